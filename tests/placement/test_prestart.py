"""The pre-start rule (``mlp_kernel.placement.prestart``) and its ``release.prestart`` policy section.

The rule is one pure function the gateway (on the extension's ``prestart`` action) and the simulator (at each
cell's modelled start of work) both call, so its answers are pinned here by hand: it starts a kernel only
from ``released`` (never for a notebook that had no GPU kernel yet), once per cell that ran, never paying
(no public member, no paid placement), and only what is admitted at once unless ``queue`` is on.
"""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlp_kernel.placement import PolicyError, parse_policy
from mlp_kernel.placement.prestart import PRESTART_STATES, Prestart, prestart_decision

MINIMAL = """\
members:
  local: {backend: local}
flavors:
  local: {member: local, tier: local, gpu_models: [local], price_per_gpu_hour: 0, capacity_gpus: 1}
"""

ON = Prestart()
GOOD = dict(
    state="released", ran_since_last_prestart=True, member_public=False, admitted_now=True, paid=False
)


def decide(prestart: Prestart = ON, **changes: object) -> tuple[bool, str]:
    return prestart_decision(prestart, **{**GOOD, **changes})  # type: ignore[arg-type]


def test_a_released_kernel_on_a_free_private_flavor_is_pre_started_and_the_reason_says_the_hold():
    start, why = decide()
    assert start
    assert why == (
        "pre-start: the kernel starts now while you edit; dropped without a new snapshot if no cell runs "
        "within 2 min"
    )


@pytest.mark.parametrize("state", ["placing", "queued", "starting", "running", "releasing", "error"])
def test_any_state_with_a_kernel_or_one_on_its_way_is_not_pre_started(state: str):
    assert decide(state=state) == (False, f"no pre-start: the GPU kernel is {state}, not released")


def test_a_first_kernel_is_pre_started_only_when_code_is_typed():
    assert decide(state="cpu_only", code_cell=True)[0]
    assert decide(state="cpu_only") == (
        False,
        "no pre-start: no GPU kernel has run yet and the activity is not code being typed",
    )
    assert decide(Prestart(first=False), state="cpu_only", code_cell=True) == (
        False,
        "no pre-start: no GPU kernel has run yet (release.prestart.first: false)",
    )
    # the other conditions hold for a first kernel too
    assert decide(state="cpu_only", code_cell=True, member_public=True)[0] is False


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ran_since_last_prestart": False}, "already pre-started once since the last cell ran"),
        ({"member_public": True}, "the GPU would come from a public member, and a pre-start never pays"),
        ({"paid": True}, "the GPU would come from a paid placement, and a pre-start never pays"),
        (
            {"admitted_now": False},
            "no private flavor has the GPUs free now (the cell will queue when it runs)",
        ),
    ],
)
def test_once_per_cell_that_ran_never_paying_and_not_queueing_by_default(
    change: dict[str, bool], reason: str
):
    assert decide(**change) == (False, f"no pre-start: {reason}")


def test_a_pre_start_dropped_unused_gives_one_second_chance_to_a_code_edit():
    assert decide(ran_since_last_prestart=False, second_chance=True, code_cell=True)[0]
    assert decide(ran_since_last_prestart=False, second_chance=True) == (
        False,
        "no pre-start: the last one went unused; the next one waits for code being typed",
    )
    assert decide(ran_since_last_prestart=False, code_cell=True) == (
        False,
        "no pre-start: already pre-started once since the last cell ran",
    )


def test_with_queue_on_a_pre_start_may_join_a_private_queue():
    start, why = decide(Prestart(queue=True), admitted_now=False)
    assert start and why.startswith("pre-start: the kernel joins the private queue while you edit")


def test_disabled_refuses_everything_and_says_where_to_turn_it_on():
    assert decide(Prestart(enabled=False)) == (
        False,
        "pre-start is off in the policy (release.prestart.enabled: false)",
    )


@given(
    enabled=st.booleans(),
    queue=st.booleans(),
    first=st.booleans(),
    state=st.sampled_from(["cpu_only", "placing", "queued", "starting", "running", "released", "error"]),
    ran=st.booleans(),
    public=st.booleans(),
    admitted=st.booleans(),
    paid=st.booleans(),
    code=st.booleans(),
    second=st.booleans(),
)
def test_a_pre_start_happens_exactly_when_every_condition_holds(
    enabled: bool,
    queue: bool,
    first: bool,
    state: str,
    ran: bool,
    public: bool,
    admitted: bool,
    paid: bool,
    code: bool,
    second: bool,
):
    start, why = prestart_decision(
        Prestart(enabled=enabled, queue=queue, first=first),
        state=state,
        ran_since_last_prestart=ran,
        member_public=public,
        admitted_now=admitted,
        paid=paid,
        code_cell=code,
        second_chance=second,
    )
    may_start_from = state in PRESTART_STATES or (state == "cpu_only" and first and code)
    chance = ran or (second and code)
    expected = enabled and may_start_from and chance and not public and not paid and (admitted or queue)
    assert start == expected
    assert why and "\n" not in why and why.startswith("pre-start" if start else ("pre-start is off", "no "))


def test_the_policy_enables_it_with_a_2_minute_hold_by_default():
    assert parse_policy(MINIMAL).release.prestart == Prestart(
        enabled=True, hold_s=120.0, queue=False, first=True
    )


def test_the_release_prestart_section_is_read():
    p = parse_policy(
        MINIMAL + "release:\n  rule: predictive\n  prestart: {enabled: false, hold: 90s, queue: true}\n"
    )
    assert p.release.kind == "predictive"
    assert p.release.prestart == Prestart(enabled=False, hold_s=90.0, queue=True)


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        (
            "release: {prestart: {hold: 0s}}",
            "release.prestart.hold",
            "must be longer than 0",
        ),
        (
            "release: {prestart: {enabled: yes please}}",
            "release.prestart.enabled",
            "expected true or false, got a string ('yes please')",
        ),
        (
            "release: {prestart: {hold: 2m, delay: 1m}}",
            "release.prestart.delay",
            "unknown field; expected one of: enabled, hold, first, queue",
        ),
        ("release: {prestart: on}", "release.prestart", "expected a mapping, got a boolean (true)"),
    ],
)
def test_prestart_mistakes_name_the_field_path_and_line(section: str, path: str, message: str):
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(MINIMAL + section + "\n"))
    assert [(i.path, i.message, i.line) for i in info.value.errors] == [(path, message, 5)]
