"""``ganinterface directions``: compute latent directions and save them as .npy + JSON.

Three ways, as the window offers them: principal directions of W (GANSpace-style), closed-form
factorisation of the modulation weights (SeFa-style), and the mean difference of two seed lists
(seeds you tagged as having a feature minus seeds without it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganinterface.cli import UserError, options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "directions", help="compute latent directions (PCA of W, SeFa, or mean difference of seeds)",
        description="Compute directions and write each as NAME.npy plus a NAME.json sidecar tied to "
                    "the model. Examples: ganinterface directions --method pca --count 10 -o dirs/ ; "
                    "ganinterface directions --method mean-difference --positive 1,5,9 "
                    "--negative 2,3,4 --name smile -o dirs/")
    options.add_checkpoint(parser)
    parser.add_argument("--method", choices=("pca", "sefa", "mean-difference"), required=True)
    parser.add_argument("--count", type=int, default=10, help="directions to keep (pca, sefa)")
    parser.add_argument("--samples", type=options.positive_int, default=10_000,
                        help="pca: the w of seeds 0 to SAMPLES-1 (default %(default)s)")
    parser.add_argument("--positive", default=None, metavar="SEEDS",
                        help=options.seeds_help("mean-difference: seeds with the feature"))
    parser.add_argument("--negative", default=None, metavar="SEEDS",
                        help=options.seeds_help("mean-difference: seeds without it"))
    options.add_truncation(parser)
    parser.add_argument("--first", type=int, default=0, help="first w row the direction moves")
    parser.add_argument("--last", type=int, default=None, help="last w row (default: the last)")
    parser.add_argument("--name", default=None, help="file and display name (default: method)")
    parser.add_argument("-o", "--out", type=Path, default=Path("directions"),
                        help="directory to write into (default: %(default)s)")
    options.add_device(parser)
    options.add_quiet(parser)
    options.add_where_options(parser, "many pca samples")
    parser.set_defaults(handler=_directions)


def _directions(args: argparse.Namespace) -> int:
    from ganinterface.engine import directions as dirs
    from ganinterface.engine.renderer import Renderer
    from ganinterface.engine.scene import Scene
    from ganinterface.export.userfiles import check_writable, write_direction
    from ganinterface.models import load_generator

    if args.count < 1:
        raise UserError(f"--count must be at least 1, got {args.count}")
    device = options.chosen_device(args)
    positive = options.seed_list(args.positive, "--positive") if args.positive else []
    negative = options.seed_list(args.negative, "--negative") if args.negative else []
    if args.method == "mean-difference" and not (positive and negative):
        raise UserError("mean-difference needs both --positive and --negative seed lists")
    check_writable(args.out, folder=True)
    generator = load_generator(args.checkpoint, device=device)
    last = generator.num_ws - 1 if args.last is None else args.last
    if not 0 <= args.first <= last < generator.num_ws:
        raise UserError(f"--first/--last must satisfy 0 <= first <= last < {generator.num_ws}")
    digest = dirs.model_hash(generator)
    psi = options.truncation_psi(args)
    provenance = {"method": args.method, "checkpoint": str(args.checkpoint or "built-in")}
    try:
        if args.method == "mean-difference":
            renderer = Renderer(generator, device)

            def ws_of(seeds: list[int]):
                import numpy as np

                return np.stack([renderer.base_ws(Scene(seed=s, truncation_psi=psi))[0]
                                 for s in seeds])

            vectors = [dirs.mean_difference(ws_of(positive), ws_of(negative))]
            provenance.update(positive=positive, negative=negative, truncation_psi=psi)
        elif args.method == "pca":
            vectors, scales = _principal_directions(args, generator, device)
            provenance.update(samples=args.samples, std=[float(s) for s in scales])
        else:
            vectors, scales = dirs.sefa_directions(generator, args.count, args.first, last)
            provenance.update(eigenvalues=[float(s) for s in scales])
    except ValueError as error:
        raise UserError(str(error)) from None
    base = args.name or args.method
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{args.out}: cannot create the directory ({error.strerror})") from None
    written = []
    for index, vector in enumerate(vectors):
        name = base if len(vectors) == 1 else f"{base}-{index:02d}"
        direction = dirs.Direction(vector, first=args.first, last=args.last, name=name,
                                   model_hash=digest, provenance={**provenance, "index": index})
        written.extend(write_direction(args.out / f"{name}.npy", direction))
    options.report(args, options.written_lines(written, "files"))
    return 0


def _principal_directions(args: argparse.Namespace, generator, device):
    """PCA of the w of seeds 0 .. --samples - 1, mapped as a batch job where ``args`` say."""
    from ganinterface.engine.directions import principal_directions
    from ganinterface.export.jobs import sampled_ws
    from ganinterface.export.progress import TqdmProgress

    with TqdmProgress("mapping", unit="latent", disable=args.quiet) as progress:
        ws = sampled_ws(options.executor_for(args, generator, device), range(args.samples),
                        progress)
    return principal_directions(ws, args.count)
