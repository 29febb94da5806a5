"""Provisioning keeps the CA's key out of every kit, whatever the participants are called."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerflow.transport import Project, ProvisionError, project_from_dict, provision


@pytest.mark.parametrize("name", ["ca", "CA", "Ca.", "ca "])
def test_a_participant_named_like_the_ca_folder_is_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match=f"participant name {name!r} is reserved"):
        project_from_dict({"nodes": [name, "site-1"]})
    with pytest.raises(ProvisionError, match="is reserved"):
        provision(Project("demo", "controller", (name,), ("admin",)), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    kits = provision(project_from_dict({"nodes": ["site-1", "ca.example.com"]}), tmp_path)
    assert (tmp_path / "ca" / "root.key").exists()
    for folder in kits.values():
        assert sorted(p.name for p in folder.iterdir()) == ["cert.pem", "key.pem", "root.pem"]


@pytest.mark.parametrize("name", ["a\x00b", "a\\b", "c:x", "tab\tx", "nul", "COM1.txt"])
def test_names_that_are_not_safe_folder_names_are_refused(name: str) -> None:
    with pytest.raises(ProvisionError, match="(not a valid participant name|is reserved)"):
        project_from_dict({"nodes": [name]})


def test_names_that_differ_only_in_case_are_one_folder_and_refused() -> None:
    with pytest.raises(ProvisionError, match=r"named more than once: \['Site-1', 'site-1'\]"):
        project_from_dict({"nodes": ["site-1", "Site-1"]})
