"""What each tool asks of GitHub through PyGithub. Synchronous: the backend runs these in worker threads.

Single resources go through PyGithub's objects (``get_repo``, ``get_contents``, ``create_issue``). Paged
lists go through its requester (``requestJsonAndCheck``), because ``PaginatedList`` hides the ``Link``
header that says whether a next page exists, and completes list items one request at a time when a field
is missing. Either way PyGithub sends the request, authenticates it, and raises its exceptions.
All readers take GitHub's documented JSON shapes and never trigger further requests.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC
from typing import Any
from urllib.parse import parse_qs, urlsplit

from github import Github, UnknownObjectException

from services.github.models import (
    Comment,
    CreateIssueArgs,
    CreateIssueResult,
    DirectoryEntry,
    FileContentsResult,
    GetFileContentsArgs,
    GetIssueArgs,
    GetRepositoryArgs,
    IssueResult,
    IssueSummary,
    License,
    ListIssuesArgs,
    ListIssuesResult,
    Release,
    RepositoryResult,
    RepositorySummary,
    SearchRepositoriesArgs,
    SearchRepositoriesResult,
)

MAX_COMMENTS = 50
"""Comments get_issue returns at most (one page of GitHub's issue-comments endpoint)."""

BINARY_SNIFF_BYTES = 8000


def search_repositories(gh: Github, args: SearchRepositoriesArgs) -> SearchRepositoriesResult:
    params: dict[str, Any] = {"q": args.query, "page": args.page, "per_page": args.per_page}
    if args.sort:
        params.update(sort=args.sort, order=args.order)
    headers, data = gh.requester.requestJsonAndCheck("GET", "/search/repositories", parameters=params)
    return SearchRepositoriesResult(
        query=args.query,
        total_count=int(data.get("total_count", 0)),
        incomplete_results=bool(data.get("incomplete_results", False)),
        page=args.page,
        per_page=args.per_page,
        has_next_page="next" in parse_link_header(headers.get("link")),
        repositories=[repository_summary(item) for item in data.get("items", [])],
    )


def get_repository(gh: Github, args: GetRepositoryArgs) -> RepositoryResult:
    repository = gh.get_repo(args.repo).complete()
    data = repository.raw_data
    # PyGithub adds the request URL to every GET answer that is an object, this one included.
    languages = {name: size for name, size in repository.get_languages().items() if isinstance(size, int)}
    try:
        release: Release | None = release_of(repository.get_latest_release().complete().raw_data)
    except UnknownObjectException:
        release = None
    license_data = data.get("license")
    return RepositoryResult(
        full_name=data["full_name"],
        description=data.get("description"),
        html_url=data["html_url"],
        homepage=data.get("homepage") or None,
        topics=list(data.get("topics") or []),
        license=License(spdx_id=license_data.get("spdx_id"), name=license_data.get("name"))
        if license_data
        else None,
        default_branch=data["default_branch"],
        visibility=data.get("visibility"),
        archived=bool(data.get("archived", False)),
        fork=bool(data.get("fork", False)),
        stars=int(data.get("stargazers_count", 0)),
        forks=int(data.get("forks_count", 0)),
        open_issues=int(data.get("open_issues_count", 0)),
        watchers=data.get("subscribers_count"),
        languages=dict(sorted(languages.items(), key=lambda item: -item[1])),
        latest_release=release,
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        pushed_at=data.get("pushed_at"),
    )


def create_issue(gh: Github, args: CreateIssueArgs) -> CreateIssueResult:
    optional: dict[str, Any] = {}
    if args.body is not None:
        optional["body"] = args.body
    if args.labels:
        optional["labels"] = args.labels
    if args.assignees:
        optional["assignees"] = args.assignees
    issue = gh.get_repo(args.repo).create_issue(title=args.title, **optional)
    return CreateIssueResult(issue=issue_summary(issue.raw_data))


def list_issues(gh: Github, args: ListIssuesArgs) -> ListIssuesResult:
    params: dict[str, Any] = {"state": args.state, "page": args.page, "per_page": args.per_page}
    if args.labels:
        params["labels"] = ",".join(args.labels)
    if args.since is not None:
        since = args.since if args.since.tzinfo else args.since.replace(tzinfo=UTC)
        params["since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers, data = gh.requester.requestJsonAndCheck("GET", f"/repos/{args.repo}/issues", parameters=params)
    links = parse_link_header(headers.get("link"))
    return ListIssuesResult(
        repo=args.repo,
        state=args.state,
        page=args.page,
        per_page=args.per_page,
        has_next_page="next" in links,
        last_page=links.get("last"),
        issues=[issue_summary(item) for item in data],
    )


def get_issue(gh: Github, args: GetIssueArgs) -> IssueResult:
    issue = gh.get_repo(args.repo).get_issue(args.number).complete().raw_data
    comments: list[dict[str, Any]] = []
    if issue.get("comments"):
        _, comments = gh.requester.requestJsonAndCheck(
            "GET", f"/repos/{args.repo}/issues/{args.number}/comments", parameters={"per_page": MAX_COMMENTS}
        )
    shown = [comment_of(item) for item in comments[:MAX_COMMENTS]]
    return IssueResult(
        issue=issue_summary(issue),
        state_reason=issue.get("state_reason"),
        body=issue.get("body"),
        comments=shown,
        comments_not_shown=max(0, int(issue.get("comments") or 0) - len(shown)),
    )


def get_file_contents(gh: Github, args: GetFileContentsArgs, max_bytes: int) -> FileContentsResult:
    found = gh.get_repo(args.repo).get_contents(args.path, **({"ref": args.ref} if args.ref else {}))
    base: dict[str, Any] = {"repo": args.repo, "path": args.path, "ref": args.ref}
    if isinstance(found, list):
        entries = [
            DirectoryEntry(name=item.name, path=item.path, type=item.type, size=item.size) for item in found
        ]
        return FileContentsResult(**base, type="dir", entries=entries)
    data = found.raw_data
    kind = data.get("type", "file")
    common: dict[str, Any] = {
        **base,
        "size": data.get("size"),
        "sha": data.get("sha"),
        "html_url": data.get("html_url"),
        "download_url": data.get("download_url"),
    }
    if kind == "symlink":
        return FileContentsResult(**common, type="symlink", target=data.get("target"))
    if kind == "submodule":
        return FileContentsResult(**common, type="submodule", target=data.get("submodule_git_url"))
    return FileContentsResult(**common, type="file", **file_text(data, max_bytes))


# Readers of GitHub's JSON ---------------------------------------------------------------------


def file_text(data: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """The text of a contents-API file object, cut at ``max_bytes``; binary files are only described."""
    size = int(data.get("size") or 0)
    if data.get("encoding") != "base64":
        # Files between 1 and 100 MB come with encoding "none" and no content.
        return {
            "note": f"GitHub does not return the content of a file this large ({size} bytes) through "
            "the contents API; use download_url."
        }
    try:
        raw = base64.b64decode(data.get("content") or "")
    except (binascii.Error, ValueError):
        return {"note": "GitHub returned content that is not valid base64."}
    if b"\x00" in raw[:BINARY_SNIFF_BYTES]:
        return {"binary": True, "note": f"Binary file ({size} bytes); content not returned as text."}
    truncated = len(raw) > max_bytes
    try:
        # A cut may split a multi-byte character; only that tail is dropped.
        text = raw[:max_bytes].decode("utf-8", errors="ignore" if truncated else "strict")
    except UnicodeDecodeError:
        return {"binary": True, "note": f"File is not UTF-8 text ({size} bytes); content not returned."}
    note = (
        f"Only the first {max_bytes} of {size} bytes are shown (GITHUB_MAX_FILE_BYTES)."
        if truncated
        else None
    )
    return {"content": text, "truncated": truncated, "note": note}


def parse_link_header(value: str | None) -> dict[str, int]:
    """``rel -> page`` from an RFC 8288 ``Link`` header such as GitHub's pagination links."""
    pages: dict[str, int] = {}
    for part in (value or "").split(","):
        url, _, params = part.strip().partition(";")
        rel = next(
            (p.split("=", 1)[1].strip('" ') for p in params.split(";") if p.strip().startswith("rel=")), None
        )
        page = parse_qs(urlsplit(url.strip().strip("<>")).query).get("page", [""])[0]
        if rel and page.isdigit():
            for name in rel.split():
                pages[name] = int(page)
    return pages


def repository_summary(item: dict[str, Any]) -> RepositorySummary:
    return RepositorySummary(
        full_name=item["full_name"],
        description=item.get("description"),
        html_url=item["html_url"],
        stars=int(item.get("stargazers_count", 0)),
        forks=int(item.get("forks_count", 0)),
        language=item.get("language"),
        topics=list(item.get("topics") or []),
        archived=bool(item.get("archived", False)),
        updated_at=item.get("updated_at"),
    )


def release_of(data: dict[str, Any]) -> Release:
    return Release(
        tag_name=data["tag_name"],
        name=data.get("name"),
        published_at=data.get("published_at"),
        html_url=data.get("html_url"),
    )


def issue_summary(item: dict[str, Any]) -> IssueSummary:
    return IssueSummary(
        number=int(item["number"]),
        title=item["title"],
        state=item["state"],
        is_pull_request="pull_request" in item,
        author=_login(item.get("user")),
        labels=[
            label["name"] if isinstance(label, dict) else str(label) for label in item.get("labels") or []
        ],
        assignees=[login for login in map(_login, item.get("assignees") or []) if login],
        comments=int(item.get("comments") or 0),
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
        closed_at=item.get("closed_at"),
        html_url=item["html_url"],
    )


def comment_of(item: dict[str, Any]) -> Comment:
    return Comment(
        id=int(item["id"]),
        author=_login(item.get("user")),
        body=item.get("body") or "",
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
        html_url=item.get("html_url"),
    )


def _login(user: Any) -> str | None:
    return user.get("login") if isinstance(user, dict) else None
