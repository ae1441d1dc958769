"""Arguments and results of the github tools."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from libmcp import ToolInput, ToolOutput

SEARCH_RESULT_WINDOW = 1000
"""GitHub's search API returns at most the first 1000 results of a query."""

_REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")


def _check_repo(value: str) -> str:
    repo = value.strip()
    if not _REPO.fullmatch(repo) or repo.split("/")[1] in (".", ".."):
        raise ValueError(f"repo must be 'owner/name' such as 'octocat/Hello-World', got {value!r}")
    return repo


def _check_path(value: str) -> str:
    path = value.strip().strip("/")
    if any(ord(char) < 32 for char in path) or "\\" in path:
        raise ValueError("path must not contain control characters or backslashes")
    if path and any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(
            f"path must be a plain path inside the repository (no '.', '..' or '//'), got {value!r}"
        )
    return path


def _check_ref(value: str) -> str:
    ref = value.strip()
    if not ref or any(char.isspace() or ord(char) < 32 for char in ref) or ref.startswith("-"):
        raise ValueError(f"ref must be a branch, tag or commit SHA without spaces, got {value!r}")
    return ref


RepoName = Annotated[
    str,
    AfterValidator(_check_repo),
    Field(
        description="Repository as 'owner/name', e.g. 'octocat/Hello-World'.",
        examples=["octocat/Hello-World"],
        json_schema_extra={"pattern": f"^{_REPO.pattern}$"},
    ),
]
Page = Annotated[int, Field(ge=1, le=1000, description="Page number, starting at 1.")]
Timestamp = Annotated[str | None, Field(description="ISO 8601 time as GitHub reports it.")]


# Arguments ------------------------------------------------------------------------------------


class SearchRepositoriesArgs(ToolInput):
    query: str = Field(
        min_length=1,
        max_length=256,
        description="GitHub search syntax, e.g. 'mcp language:python stars:>100' or 'org:github topic:cli'.",
    )
    sort: Literal["stars", "forks", "help-wanted-issues", "updated"] | None = Field(
        default=None, description="Sort field; omitted = best match."
    )
    order: Literal["asc", "desc"] = Field(default="desc", description="Sort order (only used with sort).")
    page: Page = 1
    per_page: int = Field(default=10, ge=1, le=100, description="Results per page (at most 100).")

    @model_validator(mode="after")
    def _inside_search_window(self) -> SearchRepositoriesArgs:
        if (self.page - 1) * self.per_page >= SEARCH_RESULT_WINDOW:
            raise ValueError(
                f"GitHub search returns only the first {SEARCH_RESULT_WINDOW} results; "
                f"page {self.page} of {self.per_page} starts beyond them"
            )
        return self


class GetRepositoryArgs(ToolInput):
    repo: RepoName


class CreateIssueArgs(ToolInput):
    repo: RepoName
    title: str = Field(min_length=1, max_length=256, description="Issue title.")
    body: str | None = Field(default=None, max_length=65_536, description="Issue body in GitHub Markdown.")
    labels: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        max_length=100,
        description="Label names (GitHub drops them without push access).",
    )
    assignees: list[Annotated[str, Field(min_length=1, max_length=39)]] = Field(
        default_factory=list, max_length=10, description="Logins to assign (at most 10)."
    )


class ListIssuesArgs(ToolInput):
    repo: RepoName
    state: Literal["open", "closed", "all"] = Field(default="open", description="Which issues to list.")
    labels: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20, description="Only issues carrying all of these labels."
    )
    since: datetime | None = Field(
        default=None,
        description="Only issues updated at or after this ISO 8601 time, e.g. 2026-01-31T00:00:00Z.",
    )
    page: Page = 1
    per_page: int = Field(default=30, ge=1, le=100, description="Issues per page (at most 100).")


class GetIssueArgs(ToolInput):
    repo: RepoName
    number: int = Field(ge=1, description="Issue (or pull request) number.")


class GetFileContentsArgs(ToolInput):
    repo: RepoName
    path: Annotated[str, AfterValidator(_check_path)] = Field(
        default="", max_length=1024, description="Path inside the repository; empty = the root directory."
    )
    ref: Annotated[str, Field(max_length=255), AfterValidator(_check_ref)] | None = Field(
        default=None, description="Branch, tag or commit SHA; omitted = the default branch."
    )


# Results --------------------------------------------------------------------------------------


class GithubResult(ToolOutput):
    """Every github result can carry a warning that the API rate limit is nearly used up."""

    rate_limit_warning: str | None = Field(
        default=None, description="Set when less than 10% of the GitHub API rate limit is left."
    )


class RepositorySummary(ToolOutput):
    full_name: str
    description: str | None
    html_url: str
    stars: int
    forks: int
    language: str | None
    topics: list[str]
    archived: bool
    updated_at: Timestamp


class SearchRepositoriesResult(GithubResult):
    query: str
    total_count: int = Field(description="Matches GitHub found (only the first 1000 can be paged through).")
    incomplete_results: bool = Field(description="True when GitHub's search timed out before finishing.")
    page: int
    per_page: int
    has_next_page: bool
    repositories: list[RepositorySummary]


class License(ToolOutput):
    spdx_id: str | None
    name: str | None


class Release(ToolOutput):
    tag_name: str
    name: str | None
    published_at: Timestamp
    html_url: str | None


class RepositoryResult(GithubResult):
    full_name: str
    description: str | None
    html_url: str
    homepage: str | None
    topics: list[str]
    license: License | None
    default_branch: str
    visibility: str | None
    archived: bool
    fork: bool
    stars: int
    forks: int
    open_issues: int = Field(description="Open issues and pull requests, as GitHub counts them.")
    watchers: int | None
    languages: dict[str, int] = Field(description="Bytes of code per language, largest first.")
    latest_release: Release | None = Field(description="None when the repository has no published release.")
    created_at: Timestamp
    updated_at: Timestamp
    pushed_at: Timestamp


class IssueSummary(ToolOutput):
    number: int
    title: str
    state: str
    is_pull_request: bool = Field(description="GitHub lists pull requests among issues; these are marked.")
    author: str | None
    labels: list[str]
    assignees: list[str]
    comments: int
    created_at: Timestamp
    updated_at: Timestamp
    closed_at: Timestamp
    html_url: str


class ListIssuesResult(GithubResult):
    repo: str
    state: str
    page: int
    per_page: int
    has_next_page: bool
    last_page: int | None = Field(description="Last page number, from GitHub's Link header, when known.")
    issues: list[IssueSummary]


class Comment(ToolOutput):
    id: int
    author: str | None
    body: str
    created_at: Timestamp
    updated_at: Timestamp
    html_url: str | None


class IssueResult(GithubResult):
    issue: IssueSummary
    state_reason: str | None
    body: str | None
    comments: list[Comment] = Field(description="The issue's first comments, oldest first.")
    comments_not_shown: int = Field(description="Comments left out because of the per-call bound.")


class CreateIssueResult(GithubResult):
    issue: IssueSummary


class DirectoryEntry(ToolOutput):
    name: str
    path: str
    type: str = Field(description="file, dir, symlink or submodule.")
    size: int


class FileContentsResult(GithubResult):
    repo: str
    path: str
    ref: str | None
    type: Literal["file", "dir", "symlink", "submodule"]
    size: int | None = Field(default=None, description="File size in bytes.")
    sha: str | None = None
    content: str | None = Field(default=None, description="The file as UTF-8 text (None for binary files).")
    truncated: bool = Field(default=False, description="True when content holds only the first bytes.")
    binary: bool = False
    entries: list[DirectoryEntry] | None = Field(default=None, description="Directory listing (type dir).")
    target: str | None = Field(default=None, description="Symlink target or submodule URL.")
    html_url: str | None = None
    download_url: str | None = None
    note: str | None = Field(default=None, description="Why content is missing or cut.")
