"""What a fulfilment result must be (shared/contracts/fulfilment.py), for the console and the
broker alike: keys and order IDs read as people type them, each problem named by its field,
never repeating a key."""
from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from shared.contracts import fulfilment
from shared.contracts.applications import LicenseType, Usage

A, B = uuid.uuid4(), uuid.uuid4()
KEY = "7K2QD-M9XHT-0WB4R-PZ6NC-E3VJA"


def needs(order_id: bool, *licenses: uuid.UUID) -> fulfilment.Needs:
    return fulfilment.Needs(arcserve_order_id=order_id, licenses=[
        fulfilment.NeededLicense(license_id=i, usage=Usage.BARE_METAL, license_type=LicenseType.PER_SERVER)
        for i in licenses])


def result(**body: object) -> fulfilment.Fulfilment:
    return fulfilment.Fulfilment.model_validate(body)


def test_keys_and_order_ids_are_read_as_typed_and_kept_in_upper_case():
    read = result(arcserve_order_id=" arc-20261207-ab12c ", license_keys=[{"license_id": str(A), "license_key": f" {KEY.lower()}"}])
    assert read.arcserve_order_id == "ARC-20261207-AB12C" and read.license_keys[0].license_key == KEY


@pytest.mark.parametrize("key", ["", "7K2QD-M9XHT-0WB4R-PZ6NC", "7K2QD M9XHT 0WB4R PZ6NC E3VJA", "7K2QD-M9XHT-0WB4R-PZ6NC-E3VJ!"])
def test_a_key_that_has_not_the_shape_is_refused_without_repeating_it(key: str):
    with pytest.raises(ValidationError) as refused:
        result(license_keys=[{"license_id": str(A), "license_key": key}])
    assert "five groups of five" in str(refused.value)
    assert all(key not in e["msg"] for e in refused.value.errors() if key)


def test_a_license_or_a_key_given_twice_is_refused():
    with pytest.raises(ValidationError, match="a license is named twice"):
        result(license_keys=[{"license_id": str(A), "license_key": KEY}, {"license_id": str(A), "license_key": KEY[::-1]}])
    with pytest.raises(ValidationError, match="the same key is given for two licenses"):
        result(license_keys=[{"license_id": str(A), "license_key": KEY}, {"license_id": str(B), "license_key": KEY.lower()}])


def test_a_result_fits_its_task_only_with_every_key_and_the_order_id_where_needed():
    keys = [{"license_id": str(A), "license_key": KEY}]
    assert fulfilment.problems(needs(True, A), result(arcserve_order_id="ARC-1", license_keys=keys)) == []
    assert fulfilment.problems(needs(False, A), result(license_keys=keys)) == []
    found = fulfilment.problems(needs(True, A, B), result(license_keys=[{"license_id": str(uuid.uuid4()), "license_key": KEY}]))
    assert [e["field"] for e in found] == ["arcserve_order_id", "license_keys.0.license_id", "license_keys",
                                           "license_keys"]
    assert fulfilment.problems(needs(False, A), result(arcserve_order_id="ARC-1", license_keys=keys)) == [
        {"field": "arcserve_order_id", "problem": "not wanted: this application needs no order ID"}]
