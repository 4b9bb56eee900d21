"""Job ids (trainstack.model.run_locations.new_job_id): `trainstack exec` draws one per job; `attach`/`logs`
without `--job` and `ls` take the last in sort order as the latest job."""

from __future__ import annotations

import datetime as dt

from trainstack.model.run_locations import check_job_id, new_job_id

T0 = dt.datetime(2026, 12, 3, 18, 43, 40, 0, tzinfo=dt.timezone.utc)


def test_jobs_started_within_one_second_sort_in_start_order():
    # A sweep script starting execs back to back: same second, a few milliseconds apart.
    starts = [T0 + dt.timedelta(milliseconds=ms) for ms in (0, 1, 7, 250, 998, 999)]
    for _ in range(50):  # whatever the random bits
        ids = [new_job_id(t) for t in starts]
        assert sorted(ids) == ids
        assert all(check_job_id(i) == i and i.startswith("20261203184340-") for i in ids)


def test_ids_across_seconds_sort_by_time_and_keep_their_format():
    ids = [new_job_id(T0 + dt.timedelta(seconds=s, milliseconds=999 - s)) for s in range(3)]
    assert sorted(ids) == ids
    local = T0.astimezone(dt.timezone(dt.timedelta(hours=-5)))  # the id is in UTC whatever the caller's zone
    assert new_job_id(local, "00ff") == "20261203184340-00ff"


def test_two_starts_in_the_same_millisecond_still_differ_by_their_random_bits():
    assert len({new_job_id(T0) for _ in range(200)}) > 32  # 6 random bits: 64 values
