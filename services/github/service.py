"""The github service: search and read repositories, issues and files; create issues when allowed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from libmcp import CheckContext, CheckResult, Service, StartupContext, ToolContext
from services.github import VERSION, operations
from services.github.backend import GithubBackend
from services.github.models import (
    CreateIssueArgs,
    CreateIssueResult,
    FileContentsResult,
    GetFileContentsArgs,
    GetIssueArgs,
    GetRepositoryArgs,
    IssueResult,
    ListIssuesArgs,
    ListIssuesResult,
    RepositoryResult,
    SearchRepositoriesArgs,
    SearchRepositoriesResult,
)
from services.github.settings import GithubSettings

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GithubState:
    """The one GitHub client of the service, with what its calls learnt (rate limits, a rejected token)."""

    github: GithubBackend


service: Service[GithubSettings, GithubState] = Service(
    "github",
    version=VERSION,
    title="GitHub",
    instructions=(
        "Search GitHub repositories and read repositories, issues and files through the GitHub REST API. "
        "Repositories are named 'owner/name'. Results carry rate_limit_warning when few API calls are left."
    ),
    settings_class=GithubSettings,
)
Context = ToolContext[GithubSettings, GithubState]


def _listed(name: str) -> Callable[[GithubSettings], bool]:
    return lambda settings: settings.lists_tool(name)


async def _call(ctx: Context, operation: Callable[[Any], T], *, resource: str, subject: str) -> T:
    """One GitHub API operation for the calling client, within its share of the clients."""
    return await ctx.state.github.call(operation, resource=resource, subject=subject, identity=ctx.client_id)


@service.tool(
    title="Search repositories",
    read_only=True,
    idempotent=True,
    open_world=True,
    enabled=_listed("search_repositories"),
)
async def search_repositories(args: SearchRepositoriesArgs, ctx: Context) -> SearchRepositoriesResult:
    """Search GitHub repositories with GitHub's search syntax.

    Qualifiers such as language:, stars:>N, topic:, org:, user: and in:name narrow the search. Returns one
    page of matches (full name, description, stars, forks, language, topics), the total count and whether a
    next page exists. Only the first 1000 matches can be paged through. Errors: invalid queries (422, with
    GitHub's explanation) and the search rate limit (30 searches a minute with a token, 10 without)."""
    return await _call(
        ctx,
        partial(operations.search_repositories, args=args),
        resource="search",
        subject=f"search {args.query!r}",
    )


@service.tool(
    title="Get a repository",
    read_only=True,
    idempotent=True,
    open_world=True,
    enabled=_listed("get_repository"),
)
async def get_repository(args: GetRepositoryArgs, ctx: Context) -> RepositoryResult:
    """Describe one repository by its 'owner/name'.

    Returns description, topics, license, default branch, stars, forks, open issues, languages (bytes
    per language), latest release (None if it has none) and created/updated/pushed times. Errors: the
    repository does not exist or is not visible to the token (404)."""
    return await _call(
        ctx, partial(operations.get_repository, args=args), resource="core", subject=f"repository {args.repo}"
    )


@service.tool(
    title="Create an issue",
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    enabled=_listed("create_issue"),
    enabled_when="GITHUB_ALLOW_WRITE=true",
)
async def create_issue(args: CreateIssueArgs, ctx: Context) -> CreateIssueResult:
    """Open a new issue in a repository.

    Takes a title and an optional Markdown body, labels and assignees; returns the created issue's number
    and URL. Each call creates another issue. Errors: no permission (403, or 404 for a repository the token
    cannot see) and invalid assignees or fields (422, with GitHub's details)."""
    return await _call(
        ctx, partial(operations.create_issue, args=args), resource="core", subject=f"repository {args.repo}"
    )


@service.tool(
    title="List issues", read_only=True, idempotent=True, open_world=True, enabled=_listed("list_issues")
)
async def list_issues(args: ListIssuesArgs, ctx: Context) -> ListIssuesResult:
    """List one page of a repository's issues, newest first.

    Filters: state (open, closed, all), labels (all must match) and since (updated at or after). GitHub
    includes pull requests in this list; they are marked is_pull_request. Says whether a next page exists.
    Errors: 404 when the repository does not exist or is not visible."""
    return await _call(
        ctx, partial(operations.list_issues, args=args), resource="core", subject=f"repository {args.repo}"
    )


@service.tool(
    title="Get an issue", read_only=True, idempotent=True, open_world=True, enabled=_listed("get_issue")
)
async def get_issue(args: GetIssueArgs, ctx: Context) -> IssueResult:
    """Read one issue (or pull request) by number, with its comments.

    Returns title, state, author, labels, assignees, body and the first 50 comments, oldest first
    (comments_not_shown counts the rest). Errors: 404 when the issue or repository does not exist or is
    not visible."""
    return await _call(
        ctx,
        partial(operations.get_issue, args=args),
        resource="core",
        subject=f"issue #{args.number} in {args.repo}",
    )


@service.tool(
    title="Get file contents",
    read_only=True,
    idempotent=True,
    open_world=True,
    enabled=_listed("get_file_contents"),
)
async def get_file_contents(args: GetFileContentsArgs, ctx: Context) -> FileContentsResult:
    """Read a file or list a directory of a repository.

    Reads at a branch, tag or commit (the default branch when ref is omitted; an empty path is the root).
    Text files come back decoded as UTF-8, cut at the service's size cap (truncated is then true); binary
    files are described, not returned; directories list their entries (name, path, type, size). Errors:
    404 when the path or ref does not exist."""
    settings = ctx.settings
    where = f"{args.path or '/'}{' at ' + args.ref if args.ref else ''} in {args.repo}"
    return await _call(
        ctx,
        partial(operations.get_file_contents, args=args, max_bytes=settings.github_max_file_bytes),
        resource="core",
        subject=f"path {where}",
    )


@service.lifespan
async def open_github(ctx: StartupContext[GithubSettings]) -> AsyncIterator[GithubState]:
    # PyGithub gives its logger a stderr handler and level of its own; let it follow the service's logging
    # instead (JSON on stdout, MCP_LOG_LEVEL). Its debug lines mask the Authorization header.
    pygithub_logger = logging.getLogger("github")
    pygithub_logger.handlers.clear()
    pygithub_logger.setLevel(logging.NOTSET)
    timeout_s = max(1, min(30, int(ctx.server_settings.tool_timeout_s)))
    backend = GithubBackend(
        ctx.settings,
        ctx.metrics.registry,
        timeout_s=timeout_s,
        client_share=ctx.server_settings.client_share,
        queue_timeout_s=ctx.server_settings.queue_timeout_s,
    )
    try:
        yield GithubState(backend)
    finally:
        backend.close()


@service.health_check("github")
async def github(ctx: CheckContext[GithubSettings, GithubState]) -> CheckResult:
    """Configuration and what the last calls learnt; never calls GitHub (probes must not spend rate limit)."""
    backend = ctx.state.github
    if backend.credentials_rejected:
        return CheckResult("down", "GitHub rejected GITHUB_TOKEN (401) on the last call")
    return CheckResult("ok", backend.health_detail())
