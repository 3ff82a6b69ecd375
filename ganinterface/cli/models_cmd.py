"""``ganinterface info`` (what is inside a checkpoint) and ``ganinterface convert`` (any format ->
our native safetensors + JSON)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from ganinterface.cli import UserError, options

HASH_CHUNK_BYTES = 1 << 20


def register(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser(
        "info", help="describe a checkpoint: format, architecture, sizes and layers",
        description="Load a checkpoint (NVlabs .pkl of PyTorch or TensorFlow, rosinality .pt, native .safetensors; the "
                    "format is recognised from the content) and describe it.")
    options.add_checkpoint(info)
    info.add_argument("--json", action="store_true", help="print the description as JSON")
    info.set_defaults(handler=_info)

    convert = subparsers.add_parser(
        "convert", help="convert a checkpoint to the native .safetensors format",
        description="Write IN as OUT.safetensors plus OUT.json (architecture, config, resolution, "
                    "and where it came from: file name, sha256, format).")
    convert.add_argument("source", metavar="IN", type=Path, help="checkpoint in any supported format")
    convert.add_argument("target", metavar="OUT", type=Path, help="output .safetensors path")
    convert.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    options.add_quiet(convert)
    convert.set_defaults(handler=_convert)


# ---- info --------------------------------------------------------------------------------------------

def describe_checkpoint(path: Path | None) -> dict[str, Any]:
    """Everything ``info`` prints, as plain data."""
    from ganinterface import bundled
    from ganinterface.models.loading import load_checkpoint

    loaded = load_checkpoint(path)
    generator = loaded.generator
    return {
        "file": str(path if path is not None else bundled.builtin_checkpoint()),
        "format": loaded.format,
        "source_class": loaded.source_class,
        "description": loaded.description,
        "architecture": generator.architecture,
        "resolution": [generator.img_height, generator.img_width],
        "img_channels": generator.img_channels,
        "z_dim": generator.z_dim,
        "w_dim": generator.w_dim,
        "c_dim": generator.c_dim,
        "num_ws": generator.num_ws,
        "parameters": sum(p.numel() for p in generator.parameters()),
        "notes": list(loaded.notes),
        "layers": [{"name": layer.name, "kind": layer.kind, "channels": layer.channels,
                    "height": layer.height, "width": layer.width, "w_indices": list(layer.w_indices)}
                   for layer in generator.layers],
    }


def format_description(description: dict[str, Any]) -> str:
    from ganinterface.models import size_text

    height, width = description["resolution"]
    source = f" ({description['source_class']})" if description["source_class"] else ""
    conditional = "unconditional" if description["c_dim"] == 0 else f"{description['c_dim']} classes"
    lines = [
        f"file:          {description['file']}",
        *([f"model:         {description['description']}"] if description["description"] else []),
        f"format:        {description['format']}{source}",
        f"architecture:  {description['architecture']}",
        f"resolution:    {size_text(width, height)}, {description['img_channels']} image channels",
        f"latents:       z_dim {description['z_dim']}, w_dim {description['w_dim']}, "
        f"c_dim {description['c_dim']} ({conditional}), num_ws {description['num_ws']}",
        f"parameters:    {description['parameters']:,}",
    ]
    lines += [f"note:          {note}" for note in description["notes"]]
    rows = [("#", "layer", "kind", "channels", "size", "w")]
    for index, layer in enumerate(description["layers"]):
        rows.append((str(index), layer["name"], layer["kind"], str(layer["channels"]),
                     size_text(layer["width"], layer["height"]),
                     ",".join(map(str, layer["w_indices"])) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append(f"layers:        {len(description['layers'])}")
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    description = describe_checkpoint(None if args.checkpoint is None else Path(args.checkpoint))
    if args.json:
        json.dump(description, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_description(description))
    return 0


# ---- convert -----------------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _convert(args: argparse.Namespace) -> int:
    from ganinterface import __version__
    from ganinterface.models.loading import load_checkpoint
    from ganinterface.models import size_text
    from ganinterface.models.native import save_native, sidecar_path

    source, target = args.source, args.target
    if target.suffix.lower() != ".safetensors":
        raise UserError(f"{target}: the output must be a .safetensors file")
    from ganinterface.export.userfiles import check_writable

    for existing in (target, sidecar_path(target)):
        if existing.exists() and not args.force:
            raise UserError(f"{existing}: already exists (use --force to overwrite)")
        check_writable(existing)
    if source.exists() and target.exists() and os.path.samefile(source, target):
        raise UserError(f"{target}: is the input file itself")
    loaded = load_checkpoint(source)
    provenance = {
        "source_file": source.name,
        "source_sha256": file_sha256(source),
        "source_format": loaded.format,
        "source_class": loaded.source_class,
        "notes": list(loaded.notes),
        "converted_by": f"ganinterface {__version__}",
    }
    try:
        save_native(loaded.generator, target, provenance=provenance)
    except ValueError as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"{target}: cannot write ({error.strerror or error})") from None
    options.report(args, [f"wrote {target} and {sidecar_path(target).name} ({loaded.format} -> native, "
                          f"{loaded.generator.architecture}, "
                          f"{size_text(loaded.generator.img_width, loaded.generator.img_height)})"])
    return 0
