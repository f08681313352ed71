"""rules/personal_data: which fields are personal, how they are masked, who sees them unmasked (§18)."""
from rules.personal_data import masked, mask_value, personal_fields, sees_unmasked


def test_masks_keep_enough_to_tell_apart_not_to_find():
    assert mask_value("name", "李秀英") == "李**" and mask_value("name", "王") == "王*"
    assert mask_value("phone", "138 0000 0001") == "138****0001"
    assert mask_value("phone", "1234567") == "***4567" and mask_value("phone", "110") == "***"
    assert mask_value("id_number", "41070219900101123X") == "410***********123X"
    assert mask_value("address", "红旗区东风街道幸福小区3号楼") == "红旗区东风街****"


def test_found_wherever_they_are_and_input_untouched():
    data = {"title": "噪音", "reporter": {"name": "李秀英", "phone": "13800000001", "note": "夜间"},
            "events": [{"reporter_address": "幸福小区3号楼"}], "reporter_id_number": None}
    assert personal_fields(data) == ["reporter.name", "reporter.phone", "events[0].reporter_address"]
    out = masked(data)
    assert out["reporter"] == {"name": "李**", "phone": "138****0001", "note": "夜间"}
    assert out["events"][0]["reporter_address"] == "幸福小区3号****"
    assert data["reporter"]["name"] == "李秀英"  # a copy was masked


def test_roles_that_need_it():
    assert [r for r in ("grid_worker", "grid_agency", "responsible_unit", "process_admin", "auditor", "platform")
            if sees_unmasked(r)] == ["grid_worker", "grid_agency", "auditor", "platform"]
