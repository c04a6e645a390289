"""``iomt interface list | show``, through the real ``iomt`` entry point."""

from __future__ import annotations

import pytest

import iomt.msg
from iomt.cli import main
from iomt.cli.interface import format_show
from iomt.errors import ConfigurationError


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["interface", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_prints_messages_then_services(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Messages:"
    services_at = lines.index("Services:")
    messages = [line.strip() for line in lines[1:services_at]]
    services = [line.strip() for line in lines[services_at + 1 :]]
    assert all(line.startswith("    ") for line in lines if not line.endswith(":"))
    assert messages == sorted(messages)
    assert {"iomt_interfaces/msg/Vitals", "rmw_dds_common/msg/ParticipantEntitiesInfo"} <= set(
        messages
    )
    assert services == sorted(services)
    assert {"iomt_interfaces/srv/DataShare", "iomt_interfaces/srv/DeviceInfoRequest"} <= set(
        services
    )
    assert len(messages) + len(services) == len(iomt.msg.all_interfaces())


@pytest.mark.parametrize(("flag", "heading"), [("-m", "Messages:"), ("--only-srvs", "Services:")])
def test_list_filters(capsys: pytest.CaptureFixture[str], flag: str, heading: str) -> None:
    code, out, _ = run(capsys, "list", flag)
    assert code == 0
    assert [line for line in out.splitlines() if line.endswith(":")] == [heading]


def test_show_message_expands_nested_types(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "iomt_interfaces/msg/Registration")
    assert code == 0
    text = iomt.msg.message_info("iomt_interfaces/msg/Registration").text
    assert out.startswith(text.split("builtin_interfaces/Time stamp")[0])  # comments kept
    assert "builtin_interfaces/Time stamp\n\tint32 sec\n\tuint32 nanosec\n" in out
    assert "Neighbour[] neighbours" in out
    assert "\tstring uri\n\tstring security_technique\n\tuint8 hops\n" in out
    assert "# A device another device can hear" not in out  # nested comments dropped


def test_show_service_and_short_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "iomt_interfaces/DataShare", "--no-comments")
    assert code == 0
    assert "#" not in out
    request, response = out.split("---\n")
    assert "uint8[] token\n" in request
    assert "uint8 STATUS_REFUSED = 2\n" in response
    assert "SecureEnvelope envelope\n\tstring request_id\n" in response
    assert "\tbuiltin_interfaces/Time stamp\n\t\tint32 sec\n" in response


def test_show_all_comments_and_dds_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "show", "iomt_interfaces/msg/Registration", "--all-comments", "--dds"
    )
    assert code == 0
    assert "\t# A device another device can hear" in out
    assert "# dds type:  iomt_interfaces::msg::dds_::Registration_\n" in out
    assert iomt.msg.message_info("iomt_interfaces/msg/Registration").type_hash in out


def test_show_unknown_type_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "iomt_interfaces/msg/NoSuchThing")
    assert code == 2
    assert "unknown interface type 'iomt_interfaces/msg/NoSuchThing'" in err


def test_format_show_rejects_unknown_comment_modes() -> None:
    info = iomt.msg.message_info("iomt_interfaces/msg/Vitals")
    with pytest.raises(ConfigurationError, match="comments"):
        format_show(info, lambda name: iomt.msg.message_info(name).text, comments="some")
