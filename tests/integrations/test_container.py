"""The Dockerfile: a static binary in a `scratch` image, built from the locked dependencies.
No container engine runs here, so the file's shape is checked; the image itself has not been
built (see the closing notes)."""

from __future__ import annotations

from _integ import REPO

DOCKERFILE = REPO / "Dockerfile"


def stages() -> list[list[str]]:
    """Instructions per stage, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        out[-1].append(line)
    return out


def test_the_final_image_holds_only_the_static_binary():
    build, final = stages()
    assert build[0].startswith("FROM rust:") and "-alpine" in build[0], "musl: a static binary"
    assert any("cargo build --release --locked" in i for i in build)
    assert final[0] == "FROM scratch"
    copies = [i for i in final if i.startswith("COPY")]
    assert all(i.startswith("COPY --from=build") or "LICENSE" in i for i in copies), copies
    assert 'ENTRYPOINT ["/usr/local/bin/picklegate"]' in final, "exec form: no shell in scratch"
    assert any(i.startswith("USER ") and not i.startswith("USER 0") for i in final), "not root"


def test_the_build_context_leaves_out_build_output_and_git():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "target/" in ignored and ".git/" in ignored
