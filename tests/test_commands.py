"""CommandStack: exact undo/redo of Scenes, merging of drags, clean/dirty tracking."""

from __future__ import annotations

import numpy as np

from ganinterface.engine import commands as cmd
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Recipe, Rect, Scene


def _edit(amount: float = 1.0, layer: str = "b8.conv1") -> FeatureEdit:
    return FeatureEdit(layer, (0, 2), Mask((Rect(0.1, 0.1, 0.4, 0.5),)), amount)


def test_undo_redo_walk_back_and_forth_through_exact_scenes():
    start = Scene(seed=1)
    stack = cmd.CommandStack(start)
    history = [start]
    for command in (cmd.set_fields("Seed 5", seed=5), cmd.add_edit(_edit()),
                    cmd.set_fields("Psi", truncation_psi=0.7)):
        history.append(stack.push(command))
    assert stack.labels() == ["Seed 5", "Add edit", "Psi"]
    assert history[-1] == Scene(seed=5, truncation_psi=0.7, edits=(_edit(),))
    for expected in reversed(history[:-1]):
        assert stack.undo() == expected
    assert not stack.can_undo() and stack.undo() == start
    for expected in history[1:]:
        assert stack.redo() == expected
    assert not stack.can_redo()


def test_new_command_after_undo_drops_redo_branch():
    stack = cmd.CommandStack(Scene())
    stack.push(cmd.set_fields("Seed 1", seed=1))
    stack.undo()
    assert stack.can_redo() and stack.redo_label() == "Seed 1"
    stack.push(cmd.set_fields("Seed 2", seed=2))
    assert not stack.can_redo()
    assert stack.scene.seed == 2


def test_noop_command_is_not_recorded():
    stack = cmd.CommandStack(Scene(seed=3))
    stack.push(cmd.set_fields("Seed 3", seed=3))
    assert not stack.can_undo()


def test_slider_drag_merges_into_one_entry_until_closed():
    stack = cmd.CommandStack(Scene())
    for psi in np.linspace(0.9, 0.5, 5):
        stack.push(cmd.set_fields("Truncation", merge_key="psi", truncation_psi=float(psi)))
    assert stack.labels() == ["Truncation"]
    stack.close_merge()
    stack.push(cmd.set_fields("Truncation", merge_key="psi", truncation_psi=0.3))
    assert stack.labels() == ["Truncation", "Truncation"]
    assert stack.undo().truncation_psi == 0.5
    assert stack.undo().truncation_psi == 1.0


def test_different_merge_keys_do_not_merge():
    stack = cmd.CommandStack(Scene(edits=(_edit(1.0), _edit(2.0))))
    stack.push(cmd.update_edit(0, merge_key=("amount", 0), amount=3.0))
    stack.push(cmd.update_edit(1, merge_key=("amount", 1), amount=4.0))
    assert len(stack.labels()) == 2
    assert [e.amount for e in stack.scene.edits] == [3.0, 4.0]


def test_clean_state_follows_save_undo_and_merge():
    stack = cmd.CommandStack(Scene())
    assert stack.is_clean()
    stack.push(cmd.set_fields("Seed 1", seed=1))
    assert not stack.is_clean()
    stack.mark_clean()
    assert stack.is_clean()
    stack.undo()
    assert not stack.is_clean()
    stack.redo()
    assert stack.is_clean()
    # saving ends a drag: the next step of the same slider starts a new entry, so undo reaches the
    # saved state again
    stack.push(cmd.set_fields("Psi", merge_key="psi", truncation_psi=0.5))
    stack.mark_clean()
    stack.push(cmd.set_fields("Psi", merge_key="psi", truncation_psi=0.4))
    assert not stack.is_clean()
    assert stack.undo().truncation_psi == 0.5
    assert stack.is_clean()
    # a new change after undoing past the save point makes the saved state unreachable
    stack.undo()
    stack.push(cmd.set_fields("Seed 9", seed=9))
    assert not stack.is_clean()
    stack.undo()
    assert not stack.is_clean()


def test_edit_list_commands():
    a, b, c = _edit(1.0), _edit(2.0), _edit(3.0)
    stack = cmd.CommandStack(Scene(edits=(a, b, c)))
    stack.push(cmd.move_edit(0, 2))
    assert stack.scene.edits == (b, c, a)
    stack.push(cmd.move_edit(0, -1))  # out of range: nothing happens
    assert stack.labels() == ["Reorder edits"]
    stack.push(cmd.remove_edit(1))
    assert stack.scene.edits == (b, a)
    stack.push(cmd.update_edit(0, enabled=False))
    assert stack.scene.edits[0].enabled is False and stack.scene.edits[0].amount == 2.0
    stack.push(cmd.replace_edit(1, c))
    assert stack.scene.edits[1] == c


def test_apply_recipe_appends_its_edits():
    recipe = Recipe(edits=(_edit(-2.0),), name="close mouth")
    stack = cmd.CommandStack(Scene(seed=4, edits=(_edit(1.0),)))
    stack.push(cmd.apply_recipe(recipe))
    assert stack.undo_label() == "Apply recipe close mouth"
    assert stack.scene.edits == (_edit(1.0), _edit(-2.0))


def test_listeners_hear_every_change_and_history_limit_holds():
    stack = cmd.CommandStack(Scene(), limit=3)
    seen: list[int] = []
    stack.subscribe(lambda scene: seen.append(scene.seed))
    for seed in range(1, 6):
        stack.push(cmd.set_fields(f"Seed {seed}", seed=seed))
    stack.undo()
    assert seen == [1, 2, 3, 4, 5, 4]
    assert stack.labels() == ["Seed 3", "Seed 4"]  # Seed 5 is in the redo list
    while stack.can_undo():
        stack.undo()
    assert stack.scene.seed == 2  # the oldest entries fell off the history
    assert not stack.is_clean()


def _named(amount: float, name: str) -> FeatureEdit:
    return FeatureEdit("b8.conv1", (int(abs(amount)),), Mask((Rect(0.1, 0.1, 0.4, 0.5),)), amount,
                       name=name)


def test_edit_groups_are_runs_of_one_name_and_unnamed_edits_alone():
    edits = (_named(1, "open mouth"), _named(-2, "open mouth"), _edit(), _edit(),
             _named(3, "band"), _named(4, "open mouth"), _named(5, "open mouth"))
    assert cmd.edit_groups(edits) == [range(0, 2), range(2, 3), range(3, 4), range(4, 5), range(5, 7)]
    assert cmd.edit_groups(()) == []


def test_group_commands_change_move_and_delete_a_run_of_edits():
    mouth = (_named(1, "mouth"), _named(-2, "mouth"), _named(3, "mouth"))
    other, last = _edit(7.0), _edit(8.0)
    stack = cmd.CommandStack(Scene(edits=(other,) + mouth + (last,)))
    group = range(1, 4)
    stack.push(cmd.scale_edits(group, 0.5, merge_key=("scale", 1)))
    stack.push(cmd.scale_edits(group, 3.0, merge_key=("scale", 1)))  # a drag: one history entry
    assert [e.amount for e in stack.scene.edits] == [7.0, 1.5, -3.0, 4.5, 8.0]
    assert stack.labels() == ["Edit strength"]
    stack.push(cmd.update_edits(group, "Hide", enabled=False))
    assert [e.enabled for e in stack.scene.edits] == [True, False, False, False, True]
    scaled = stack.scene.edits[1:4]
    stack.push(cmd.move_edits(group, 0))  # before the edit above it
    assert stack.scene.edits == scaled + (other, last)
    stack.push(cmd.move_edits(range(0, 3), 2))  # after the two others
    assert stack.scene.edits == (other, last) + scaled
    stack.push(cmd.move_edits(range(0, 3), 3))  # out of range: nothing happens
    assert stack.scene.edits == (other, last) + scaled
    stack.push(cmd.remove_edits(range(2, 5)))
    assert stack.scene.edits == (other, last)
    assert len(stack.labels()) == 5  # strength, hide, two moves, delete: the no-op is not history
    for _ in range(5):
        stack.undo()
    assert stack.scene.edits == (other,) + mouth + (last,)


def test_retargeting_an_edit_drops_the_level_of_its_old_channels():
    import dataclasses

    levelled = dataclasses.replace(_edit(1.5), level=0.3, level_floor=1.0)
    stack = cmd.CommandStack(Scene(edits=(levelled, _edit(2.0))))
    stack.push(cmd.retarget_edit(0, (5, 6)))
    stack.push(cmd.retarget_edit(1, (1,)))
    first, second = stack.scene.edits
    assert first.channels == (5, 6) and first.level is None and first.amount == 1.5
    assert second.channels == (1,) and second.level is None
    assert stack.undo_label() == "Re-target edit"
    stack.undo()
    stack.undo()
    assert stack.scene.edits[0] == levelled
