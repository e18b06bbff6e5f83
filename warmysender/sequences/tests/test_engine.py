"""The pure planning step: every claimed enrollment gets exactly one decision, caps are never
over-granted, nothing is scheduled earlier than now or outside the window."""

from __future__ import annotations

import copy
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from warmysender.sequences.engine import (
    CampaignPlan,
    Due,
    Finish,
    MailboxSlot,
    PoolEntry,
    Send,
    StepPlan,
    VariantChoice,
    Wait,
    choose_variant,
    next_step_at,
    plan_batch,
)
from warmysender.sequences.windows import Window, is_open

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday
ALWAYS = Window.of("UTC", list(range(7)), 0, 24)
STEP = StepPlan(
    id=1, step_index=1, delay=timedelta(0), variants=(VariantChoice(11, 50), VariantChoice(12, 50))
)


def slot(mid: str, remaining: int = 10, **kw: object) -> MailboxSlot:
    values: dict = {
        "id": mid,
        "email": f"{mid}@ex.com",
        "zone": ZoneInfo("UTC"),
        "usable": True,
        "remaining": remaining,
        "ready_at": None,
        "domain_limit": 50,
    }
    values.update(kw)
    return MailboxSlot(**values)


def campaign(
    cid: str, pool: list[str], remaining: int = 100, window: Window = ALWAYS
) -> CampaignPlan:
    return CampaignPlan(
        id=cid,
        window=window,
        remaining=remaining,
        zone=ZoneInfo("UTC"),
        randomize=False,
        steps={1: STEP},
        pool=[PoolEntry(m, 1000) for m in pool],
        workspace_id="w1",
    )


def due(
    eid: str, cid: str = "c1", mailbox: str | None = None, domain: str = "a.com", step: int = 1
) -> Due:
    return Due(eid, cid, mailbox, step, domain, NOW - timedelta(minutes=1))


def test_it_rotates_over_the_pool_one_send_per_mailbox() -> None:
    plans = {"c1": campaign("c1", ["m1", "m2", "m3"])}
    boxes = {m: slot(m) for m in ("m1", "m2", "m3")}
    out = plan_batch(
        [due(f"e{i}") for i in range(5)], plans, boxes, {"w1": None}, NOW, random.Random(1)
    )
    sends = [d for d in out if isinstance(d, Send)]
    assert [s.mailbox_id for s in sends] == ["m1", "m2", "m3"]
    waits = [d for d in out if isinstance(d, Wait)]
    assert len(waits) == 2 and all("pacing" in w.reason for w in waits)


def test_a_pinned_enrollment_waits_for_its_own_mailbox() -> None:
    plans = {"c1": campaign("c1", ["m1", "m2"])}
    boxes = {"m1": slot("m1", remaining=0), "m2": slot("m2")}
    out = plan_batch([due("e1", mailbox="m1")], plans, boxes, {"w1": None}, NOW, random.Random(1))
    assert isinstance(out[0], Wait)
    assert out[0].reason == "daily cap reached on m1@ex.com"
    assert out[0].until == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)


def test_full_mailboxes_are_skipped_for_new_prospects() -> None:
    plans = {"c1": campaign("c1", ["m1", "m2"])}
    boxes = {"m1": slot("m1", remaining=0), "m2": slot("m2")}
    out = plan_batch([due("e1")], plans, boxes, {"w1": None}, NOW, random.Random(1))
    assert isinstance(out[0], Send) and out[0].mailbox_id == "m2"


def test_the_campaign_limit_and_the_plan_quota_stop_sends() -> None:
    plans = {"c1": campaign("c1", ["m1", "m2", "m3"], remaining=1)}
    boxes = {m: slot(m) for m in ("m1", "m2", "m3")}
    out = plan_batch([due("e1"), due("e2")], plans, boxes, {"w1": None}, NOW, random.Random(1))
    assert isinstance(out[0], Send)
    assert isinstance(out[1], Wait) and out[1].reason == "campaign daily send limit reached"
    plans = {"c1": campaign("c1", ["m1", "m2"])}
    boxes = {m: slot(m) for m in ("m1", "m2")}
    out = plan_batch([due("e1"), due("e2")], plans, boxes, {"w1": 1}, NOW, random.Random(1))
    assert isinstance(out[0], Send)
    assert isinstance(out[1], Wait) and out[1].reason == "plan email quota reached"


def test_the_recipient_domain_limit_holds_per_mailbox() -> None:
    plans = {"c1": campaign("c1", ["m1", "m2"])}
    boxes = {
        "m1": slot("m1", domain_limit=1, domain_counts={"a.com": 1}),
        "m2": slot("m2", domain_limit=1),
    }
    out = plan_batch(
        [due("e1"), due("e2", domain="b.com")], plans, boxes, {"w1": None}, NOW, random.Random(1)
    )
    # a.com is full on m1, so the first goes through m2; b.com then finds m2 used this tick and
    # m1 free for it.
    assert [(d.enrollment_id, d.mailbox_id) for d in out if isinstance(d, Send)] == [
        ("e1", "m2"),
        ("e2", "m1"),
    ]


def test_an_enrollment_past_its_last_step_finishes() -> None:
    plans = {"c1": campaign("c1", ["m1"])}
    out = plan_batch(
        [due("e1", step=2)], plans, {"m1": slot("m1")}, {"w1": None}, NOW, random.Random(1)
    )
    assert out == [Finish("e1")]


def test_variants_follow_their_weights_and_a_winner_takes_all() -> None:
    rng = random.Random(3)
    picks = Counter(choose_variant(STEP, rng) for _ in range(2000))
    assert 850 < picks[11] < 1150 and 850 < picks[12] < 1150
    skewed = StepPlan(1, 1, timedelta(0), (VariantChoice(11, 90), VariantChoice(12, 10)))
    picks = Counter(choose_variant(skewed, rng) for _ in range(2000))
    assert picks[11] > 1600
    won = StepPlan(1, 1, timedelta(0), STEP.variants, winner_variant_id=12)
    assert {choose_variant(won, rng) for _ in range(50)} == {12}


def test_the_next_step_is_due_after_its_delay_plus_jitter_inside_the_window() -> None:
    window = Window.of("Europe/Berlin", [0, 1, 2, 3, 4], 9, 17)
    sent = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tue 10:00 Berlin
    when, reason = next_step_at(sent, timedelta(days=3), window, random.Random(2), randomize=False)
    # Friday 10:00 Berlin plus 1–5 minutes of jitter, no clamping needed.
    assert sent + timedelta(days=3, minutes=1) <= when <= sent + timedelta(days=3, minutes=5)
    assert reason == ""
    when, reason = next_step_at(sent, timedelta(days=4), window, random.Random(2), randomize=False)
    assert when == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # Saturday → Monday 09:00 Berlin
    assert reason.startswith("outside sending window, next 09:00 Europe/Berlin")


# --- properties -------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple:
    n_mailboxes = draw(st.integers(1, 6))
    boxes = {}
    for i in range(n_mailboxes):
        mid = f"m{i}"
        boxes[mid] = slot(
            mid,
            remaining=draw(st.integers(0, 4)),
            usable=draw(st.booleans()) or i == 0,
            zone=ZoneInfo(draw(st.sampled_from(ZONES))),
            ready_at=draw(
                st.sampled_from([None, NOW - timedelta(minutes=1), NOW + timedelta(minutes=3)])
            ),
            domain_limit=draw(st.integers(1, 3)),
        )
    plans = {}
    for j in range(draw(st.integers(1, 3))):
        cid = f"c{j}"
        start = draw(st.integers(0, 22))
        window = Window.of(
            draw(st.sampled_from(ZONES)),
            sorted(draw(st.sets(st.integers(0, 6), min_size=1))),
            start,
            draw(st.integers(start + 1, 24)),
        )
        pool = draw(
            st.lists(st.sampled_from(sorted(boxes)), min_size=0, max_size=n_mailboxes, unique=True)
        )
        plan = campaign(cid, pool, remaining=draw(st.integers(0, 5)), window=window)
        for entry in plan.pool:
            entry.remaining = draw(st.integers(0, 3))
        plans[cid] = plan
    items = []
    for k in range(draw(st.integers(0, 25))):
        cid = draw(st.sampled_from(sorted(plans)))
        pinned = draw(st.sampled_from([None, *sorted(boxes)]))
        items.append(
            due(f"e{k}", cid=cid, mailbox=pinned, domain=draw(st.sampled_from(["a.com", "b.com"])))
        )
    return plans, boxes, items, draw(st.sampled_from([None, 0, 2, 100]))


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios(), seed=st.integers(0, 2**32))
def test_no_cap_is_ever_exceeded_and_nothing_moves_earlier(scenario: tuple, seed: int) -> None:
    plans, boxes, items, quota = scenario
    before_boxes = copy.deepcopy(boxes)
    before_plans = copy.deepcopy(plans)
    out = plan_batch(items, plans, boxes, {"w1": quota}, NOW, random.Random(seed))

    assert [d.enrollment_id for d in out] == [i.id for i in items]  # one decision each, in order
    sends = [d for d in out if isinstance(d, Send)]
    per_mailbox = Counter(s.mailbox_id for s in sends)
    for mid, n in per_mailbox.items():
        assert n == 1  # the pacer: one new send per mailbox per pass
        assert n <= before_boxes[mid].remaining
        assert before_boxes[mid].usable
        assert before_boxes[mid].ready_at is None or before_boxes[mid].ready_at <= NOW
    for cid, n in Counter(s.campaign_id for s in sends).items():
        assert n <= before_plans[cid].remaining
        assert is_open(before_plans[cid].window, NOW)
    for (cid, mid), n in Counter((s.campaign_id, s.mailbox_id) for s in sends).items():
        entry = next(e for e in before_plans[cid].pool if e.mailbox_id == mid)
        assert n <= entry.remaining
    by_id = {i.id: i for i in items}
    for s in sends:
        item = by_id[s.enrollment_id]
        if item.mailbox_id is not None:
            assert s.mailbox_id == item.mailbox_id
        assert s.mailbox_id in {e.mailbox_id for e in before_plans[item.campaign_id].pool}
        domains = Counter((x.mailbox_id, by_id[x.enrollment_id].domain) for x in sends)
        assert (
            domains[(s.mailbox_id, item.domain)]
            + before_boxes[s.mailbox_id].domain_counts.get(item.domain, 0)
            <= before_boxes[s.mailbox_id].domain_limit
        )
    if quota is not None:
        assert len(sends) <= quota
    for w in (d for d in out if isinstance(d, Wait)):
        assert w.until > NOW
        assert w.reason
        window = before_plans[by_id[w.enrollment_id].campaign_id].window
        assert is_open(window, w.until)
