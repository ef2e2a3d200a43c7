"""`dispatchyard project`: an org's projects."""

from __future__ import annotations

import click

from dispatchyard.cli.client import Api
from dispatchyard.cli.options import ORG_OPTION, command
from dispatchyard.cli.output import emit
from dispatchyard.state.models import SLUG_PATTERN


@click.group()
def project() -> None:
    """Projects of an org (/api/org/{org}/projects)."""


@command(project, "create")
@ORG_OPTION
@click.option("--slug", required=True, help=SLUG_PATTERN)
@click.option("--name", required=True)
@click.option("--repository", help="e.g. github.com/acme/web")
def project_create(api: Api, org_id: str, slug: str, name: str, repository: str | None) -> None:
    """Create a project."""
    body = {"slug": slug, "name": name, "repository": repository}
    emit(api, api.call("POST", f"/api/org/{org_id}/projects", body), record="project")


@command(project, "list")
@ORG_OPTION
def project_list(api: Api, org_id: str) -> None:
    """List an org's projects."""
    data = api.call("GET", f"/api/org/{org_id}/projects")
    emit(api, data, rows="projects", columns=("id", "slug", "name", "repository", "createdAt"))
