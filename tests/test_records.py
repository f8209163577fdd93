"""Training records (vae_explorer/records.py): an EpochRecord's JSON round trip, old records
brought up to date (no per-level KL, no sharpness), and crafted records refused field by field,
so that plots and diagnostics that read a checkpoint's history never meet a wrong type."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import epoch_record
from vae_explorer.records import EPOCH_FIELDS, EpochRecord, history_from_dicts


def test_an_epoch_record_round_trips_through_json():
    rec = epoch_record(epoch=3, step=30, kl_per_dim=[0.25, 0.75], test_kl_levels=[0.4, 0.6], collapsed=True)
    back = EpochRecord.from_dict(json.loads(json.dumps(rec.to_dict())), latent_dim=2)
    assert back == rec and set(rec.to_dict()) == EPOCH_FIELDS


def test_non_finite_measurements_are_kept():
    # An infinite prior gap or a NaN sharpness is a real measurement, not a malformed record.
    rec = epoch_record(prior_gap=math.inf, sharpness=math.nan)
    back = EpochRecord.from_dict(rec.to_dict())
    assert back.prior_gap == math.inf and math.isnan(back.sharpness)


def test_a_record_saved_before_levels_and_sharpness_is_brought_up_to_date():
    old = epoch_record(test_kl=1.5).to_dict()
    del old["test_kl_levels"], old["sharpness"]
    rec = EpochRecord.from_dict(old)
    assert rec.test_kl_levels == [1.5]  # one level: the whole KL
    assert math.isnan(rec.sharpness)  # not measured then: unknown, not 0
    assert "sharpness" not in old  # the caller's dict is left as it was


@pytest.mark.parametrize(
    "change, message",
    [
        ({"collapsed": 1}, r"invalid 'collapsed'"),
        ({"step": True}, r"invalid 'step'"),
        ({"epoch": -1}, r"invalid 'epoch'"),
        ({"active_units": 2.0}, r"invalid 'active_units'"),
        ({"skipped_steps": 2**53}, r"invalid 'skipped_steps'"),
        ({"test_loss": "26"}, r"invalid 'test_loss'"),
        ({"beta": None}, r"invalid 'beta'"),
        ({"kl_per_dim": "0.5"}, r"invalid 'kl_per_dim'"),
        ({"kl_per_dim": [0.5, True]}, r"invalid 'kl_per_dim'"),
        ({"test_kl_levels": [0.1, 0.2, 0.3]}, r"invalid 'test_kl_levels'"),
    ],
)
def test_a_crafted_field_is_refused_by_name(change, message):
    data = {**epoch_record().to_dict(), **change}
    with pytest.raises(ValueError, match=rf"a training-history record has an {message}"):
        EpochRecord.from_dict(data)


def test_records_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"a training-history record must be an object"):
        EpochRecord.from_dict([1, 2])
    extra = {**epoch_record().to_dict(), "learning_rate": 0.1}
    with pytest.raises(ValueError, match=r"does not have the fields of an epoch record"):
        EpochRecord.from_dict(extra)
    missing = epoch_record().to_dict()
    del missing["prior_gap"]
    with pytest.raises(ValueError, match=r"does not have the fields of an epoch record"):
        EpochRecord.from_dict(missing)
    two_dims = epoch_record(kl_per_dim=[0.5, 0.5]).to_dict()
    assert EpochRecord.from_dict(two_dims).kl_per_dim == [0.5, 0.5]  # no latent size given: any length
    with pytest.raises(ValueError, match=r"invalid 'kl_per_dim'"):
        EpochRecord.from_dict(two_dims, latent_dim=3)


def test_a_history_is_a_list_of_typed_records():
    raw = [epoch_record(epoch=1).to_dict(), epoch_record(epoch=2).to_dict()]
    history = history_from_dicts(raw, latent_dim=2)
    assert [type(r) for r in history] == [EpochRecord, EpochRecord] and [r.epoch for r in history] == [1, 2]
    assert history_from_dicts([]) == []
    with pytest.raises(ValueError, match=r"the training history must be a list of epoch records"):
        history_from_dicts({"epoch": 1})
    with pytest.raises(ValueError, match=r"a training-history record must be an object"):
        history_from_dicts([raw[0], "abc"])
