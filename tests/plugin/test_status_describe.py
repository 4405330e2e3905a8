"""``kubectl coachops status`` and ``describe`` against the real apiserver and operator,
as docs/plugin.md shows them; the errors a user meets say what to do and exit non-zero."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from coachops_crds import constants as c
from tests.conftest import Cluster
from tests.operator_suite.conftest import Kube, Operator
from tests.plugin.conftest import Plugin, creator_ready, invoke, program_synced


def _cells(line: str) -> list[str]:
    """The cells of one table row."""
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def _row(text: str, *cells: str) -> str:
    """The one table line holding every cell (fails when none or several do)."""
    lines = [line for line in text.splitlines() if all(cell in line for cell in cells)]
    assert len(lines) == 1, (cells, text)
    return lines[0]


async def test_status_lists_tenants_and_programs_with_their_conditions(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    plugin: Plugin,
) -> None:
    first, second = new_creator_name("st"), new_creator_name("st")
    await creator_ready(kube, creators, first)
    await creator_ready(kube, creators, second, "Suspended", suspended=True)
    await program_synced(kube, first, "fitness")

    ran = await plugin("status")

    assert ran.code == 0, ran.err
    creator = _cells(_row(ran.out, first, "NamespaceReady"))
    assert creator[:3] == [first, "", "True"], creator
    for part in ("NamespaceReady ✓", "DatabaseReady ✓", "CacheReady ✓", "VectorStoreReady ✓"):
        assert part in creator[3], creator
    program = _cells(_row(ran.out, first, "fitness"))
    assert program[:2] == [first, "fitness"], program
    assert "Synced ✓" in program[3], program
    suspended = _cells(_row(ran.out, second))
    assert suspended[:3] == [second, "", "False"], suspended
    assert (
        suspended[4] == "Suspended: The tenant is provisioned but suspended: it serves no traffic"
    )


async def test_describe_shows_what_one_tenant_owns_and_never_a_secret_value(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    plugin: Plugin,
) -> None:
    mine, other = new_creator_name("ds"), new_creator_name("ds")
    await creator_ready(kube, creators, mine)
    await creator_ready(kube, creators, other)
    await program_synced(kube, mine, "sleep")
    await program_synced(kube, other, "running")
    namespace = c.creator_namespace(mine)

    ran = await plugin("describe", mine)

    assert ran.code == 0, ran.err
    text = ran.out
    assert re.search(rf"^Namespace +{namespace} *$", text, re.MULTILINE), text
    assert re.search(rf"^Tenant id +{c.tenant_id(mine)} *$", text, re.MULTILINE), text
    # The stores' health as the operator reports it, with where each store is.
    assert "True" in _row(text, "PostgreSQL", f"role={c.tenant_db_role(mine)}")
    assert "True" in _row(text, "Redis", f"keyPrefix={c.tenant_redis_prefix(mine)}")
    assert "True" in _row(text, "ChromaDB", f"tenant={c.chroma_tenant(mine)}")
    assert _row(text, "sleep", "coachops/")  # the program and its chat model
    assert _row(text, "│ Namespace ", namespace, "Active")
    assert _row(text, "Secret", c.TENANT_SECRET, "type Opaque")
    assert _row(text, "ResourceQuota")
    # Only this tenant's things; no credential in the output.
    assert "running" not in text
    assert other not in text
    data = await kube.secret_data(namespace, c.TENANT_SECRET)
    credentials = {k: v for k, v in data.items() if "PASSWORD" in k or k.endswith("URL")}
    assert credentials, sorted(data)
    for key, value in credentials.items():
        assert value not in text, key


async def test_errors_name_the_problem_and_exit_non_zero(
    operator: Operator, cluster: Cluster, plugin: Plugin, tmp_path: Path
) -> None:
    ran = await plugin("describe", "nobody-here")
    assert ran.code == 1
    assert "error: no Creator named 'nobody-here'" in ran.err

    ran = await invoke("pull", "no-such-program", env={"KUBECONFIG": str(cluster.kubeconfig)})
    assert ran.code == 1
    assert "no CoachingProgram named 'no-such-program'" in ran.err

    ran = await invoke("status", env={"KUBECONFIG": str(tmp_path / "missing")})
    assert ran.code == 1
    assert "error: no usable kubeconfig: cannot read kubeconfig" in ran.err

    ran = await invoke("status", env={"KUBECONFIG": None, "HOME": str(tmp_path)})
    assert ran.code == 1
    assert "no KUBECONFIG, no ~/.kube/config" in ran.err

    # The kubeconfig's cluster is not there.
    closed = tmp_path / "closed.yaml"
    server = "https://127.0.0.1:9"  # the discard port: nothing listens
    closed.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: x, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: x, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\n"
    )
    ran = await invoke("--kubeconfig", str(closed), "status")
    assert ran.code == 1
    assert f"error: cannot reach the apiserver at {server}" in ran.err

    # A user without the rights: the apiserver's refusal, not a traceback.
    limited = await cluster.service_account_kubeconfig("default", "default")
    ran = await plugin("status", env={"KUBECONFIG": str(limited)})
    assert ran.code == 1
    assert "error: the apiserver refused the kubeconfig's user: HTTP 403" in ran.err
    assert "Traceback" not in ran.err
