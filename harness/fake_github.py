"""A local stand-in for the GitHub REST API, because the real one cannot be reached from the test machine.

It answers the endpoints the github service uses with payloads in GitHub's documented shapes
(docs.github.com/rest: search, repositories, issues, issue comments, contents), sends GitHub's rate-limit
headers (``x-ratelimit-limit/remaining/reset/used/resource``) and pagination ``Link`` headers, and answers
errors with GitHub's error body (``message``, ``documentation_url``, ``status``, and ``errors`` for 422).
Every request it receives is recorded so tests can assert what the service sent.

Named repositories trigger the failure cases:

- ``octo-org/hello-world``: a full repository (topics, license, languages, a release, issues, files).
- ``octo-org/empty-notes``: no license, no topics, no release (``releases/latest`` answers 404).
- ``octo-org/slow``: ``GET /repos/octo-org/slow`` waits until the test sets ``slow_release``.
- ``octo-org/primary-limit`` / ``octo-org/secondary-limit``: primary and secondary rate-limit 403s.
- ``octo-org/forbidden``: a plain 403 (an integration without access).
- ``octo-org/too-many``: a 429 secondary rate limit without ``retry-after``.
- ``octo-org/teapot``: a 502 with a non-standard message.
- anything else: 404 Not Found. A token other than ``valid_tokens``: 401 Bad credentials.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DOCS = "https://docs.github.com/rest"
REPO_ID = {"octo-org/hello-world": 1296269, "octo-org/empty-notes": 1296270, "octo-org/slow": 1296271}
README = "# Hello World\n\nA repository for testing. Ünïcödé is fine.\n" + "More text here. " * 10 + "\n"
README_AT_TAG = "# Hello World (v1.2.0)\n"
APP_PY = 'print("hello")\n'
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
SEARCH_422_MESSAGE = (
    "The listed users and repositories cannot be searched either because the resources do not exist "
    "or you do not have permission to view them."
)
BIG_TEXT = "".join(f"line {n:04d} of a long text file\n" for n in range(200))


@dataclass
class Received:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeGitHub:
    """The stand-in's state: its fixtures, what it received, and the knobs tests turn."""

    valid_tokens: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    remaining: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    reset_at: int = 0
    slow_started: threading.Event = field(default_factory=threading.Event)
    slow_release: threading.Event = field(default_factory=threading.Event)
    next_issue_number: int = 8

    def reset(self) -> None:
        self.received.clear()
        self.events.clear()
        self.remaining = {"core": 4990, "search": 29}
        self.limits = {"core": 5000, "search": 30}
        self.reset_at = int(time.time()) + 1800
        self.slow_started.clear()
        self.slow_release.clear()
        self.next_issue_number = 8

    def paths(self, method: str = "GET") -> list[str]:
        return [request.path for request in self.received if request.method == method]

    # The ASGI app ---------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/search/repositories", self._search),
                Route("/repos/{owner}/{name}", self._repository),
                Route("/repos/{owner}/{name}/languages", self._languages),
                Route("/repos/{owner}/{name}/releases/latest", self._latest_release),
                Route("/repos/{owner}/{name}/issues", self._issues, methods=["GET", "POST"]),
                Route("/repos/{owner}/{name}/issues/{number:int}", self._issue),
                Route("/repos/{owner}/{name}/issues/{number:int}/comments", self._comments),
                Route("/repos/{owner}/{name}/contents/{path:path}", self._contents),
                Route("/repos/{owner}/{name}/contents", self._contents),
            ]
        )

    async def _record(self, request: Request) -> Received:
        body = await request.body()
        received = Received(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={key.lower(): value for key, value in request.headers.items()},
            body=json.loads(body) if body else None,
        )
        self.received.append(received)
        return received

    def _rate_headers(self, resource: str, *, remaining: int | None = None) -> dict[str, str]:
        limit = self.limits[resource]
        left = self.remaining[resource] if remaining is None else remaining
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(left),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-used": str(limit - left),
            "x-ratelimit-resource": resource,
        }

    def _json(self, data: Any, resource: str = "core", status: int = 200, **headers: str) -> Response:
        return JSONResponse(data, status_code=status, headers={**self._rate_headers(resource), **headers})

    def _error(self, status: int, message: str, resource: str = "core", **extra: Any) -> Response:
        body = {
            "message": message,
            "documentation_url": extra.pop("documentation_url", DOCS),
            "status": str(status),
        }
        body.update(extra.pop("body", {}))
        headers = {**self._rate_headers(resource, remaining=extra.pop("remaining", None)), **extra}
        return JSONResponse(body, status_code=status, headers=headers)

    async def _gate(self, request: Request, resource: str) -> tuple[Received, Response | None]:
        """Record the request; answer 401 for unknown tokens and the rate-limit and 403 cases."""
        received = await self._record(request)
        authorization = received.headers.get("authorization")
        if authorization is not None:
            _, _, token = authorization.partition(" ")
            if token not in self.valid_tokens:
                return received, self._error(401, "Bad credentials", resource)
        if self.limits[resource] and self.remaining[resource] <= 0:
            return received, self._primary_limit(resource, authorization is None)
        repo = "/".join(request.path_params.get(key, "") for key in ("owner", "name"))
        if repo == "octo-org/primary-limit":
            return received, self._primary_limit(resource, authorization is None)
        if repo == "octo-org/secondary-limit":
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                "If you reach out to GitHub Support for help, please include the request ID 0000:1111:2222."
            )
            return received, self._error(
                403,
                message,
                resource,
                documentation_url=f"{DOCS}/using-the-rest-api/rate-limits-for-the-rest-api",
                **{"retry-after": "60"},
            )
        if repo == "octo-org/forbidden":
            return received, self._error(403, "Resource not accessible by integration", resource)
        if repo == "octo-org/too-many":
            return received, self._error(429, "You have exceeded a secondary rate limit.", resource)
        if repo == "octo-org/teapot":
            return received, self._error(502, "Server Error", resource)
        return received, None

    def _primary_limit(self, resource: str, anonymous: bool) -> Response:
        who = "127.0.0.1" if anonymous else "user ID 1"
        message = (
            f"API rate limit exceeded for {who}. (But here's the good news: Authenticated requests get a "
        )
        message += "higher rate limit. Check out the documentation for more details.)"
        return self._error(
            403,
            message,
            resource,
            remaining=0,
            documentation_url=f"{DOCS}/overview/resources-in-the-rest-api#rate-limiting",
        )

    # Payloads ----------------------------------------------------------------------------------

    def _repo_payload(self, base: str, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/")
        rich = full_name == "octo-org/hello-world"
        return {
            "id": REPO_ID.get(full_name, 1),
            "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "id": 1, "type": "Organization", "url": f"{base}/users/{owner}"},
            "private": False,
            "html_url": f"https://github.example/{full_name}",
            "description": "This your first repo!" if rich else None,
            "fork": False,
            "url": f"{base}/repos/{full_name}",
            "languages_url": f"{base}/repos/{full_name}/languages",
            "homepage": "https://github.example" if rich else "",
            "language": "Python" if rich else None,
            "forks_count": 9 if rich else 0,
            "stargazers_count": 80 if rich else 0,
            "watchers_count": 80 if rich else 0,
            "subscribers_count": 42 if rich else 1,
            "size": 108,
            "default_branch": "main",
            "open_issues_count": 6 if rich else 0,
            "is_template": False,
            "topics": ["octocat", "atom", "electron", "api"] if rich else [],
            "has_issues": True,
            "archived": False,
            "disabled": False,
            "visibility": "public",
            "pushed_at": "2026-11-20T22:06:43Z",
            "created_at": "2011-01-26T19:01:12Z",
            "updated_at": "2026-11-21T09:14:00Z",
            "license": {
                "key": "mit",
                "name": "MIT License",
                "spdx_id": "MIT",
                "url": f"{base}/licenses/mit",
                "node_id": "MDc6TGljZW5zZW1pdA==",
            }
            if rich
            else None,
            "forks": 9 if rich else 0,
            "open_issues": 6 if rich else 0,
            "watchers": 80 if rich else 0,
        }

    def _issue_payload(self, base: str, full_name: str, number: int, **fields: Any) -> dict[str, Any]:
        url = f"{base}/repos/{full_name}/issues/{number}"
        issue = {
            "id": 1000 + number,
            "node_id": f"MDU6SXNzdWUx{number}",
            "url": url,
            "repository_url": f"{base}/repos/{full_name}",
            "comments_url": f"{url}/comments",
            "html_url": f"https://github.example/{full_name}/issues/{number}",
            "number": number,
            "state": "open",
            "state_reason": None,
            "title": f"Issue number {number}",
            "body": f"Body of issue {number}.",
            "user": {"login": "octocat", "id": 1},
            "labels": [],
            "assignee": None,
            "assignees": [],
            "locked": False,
            "comments": 0,
            "closed_at": None,
            "created_at": f"2026-10-{number:02d}T10:00:00Z",
            "updated_at": f"2026-11-{number:02d}T10:00:00Z",
            "author_association": "OWNER",
        }
        issue.update(fields)
        return issue

    def _label(self, base: str, full_name: str, name: str) -> dict[str, Any]:
        return {
            "id": hash(name) % 10_000,
            "name": name,
            "color": "f29513",
            "default": name == "bug",
            "url": f"{base}/repos/{full_name}/labels/{name}",
            "description": None,
        }

    def _issues_of(self, base: str, full_name: str) -> list[dict[str, Any]]:
        """Seven issues, newest first: #7 is a pull request, #3 is closed, #1 and #2 have comments."""

        def label(name: str) -> dict[str, Any]:
            return self._label(base, full_name, name)

        issues = [
            self._issue_payload(
                base, full_name, 1, labels=[label("bug")], comments=3, assignees=[{"login": "hubot", "id": 2}]
            ),
            self._issue_payload(base, full_name, 2, labels=[label("bug"), label("docs")], comments=60),
            self._issue_payload(
                base,
                full_name,
                3,
                state="closed",
                state_reason="completed",
                closed_at="2026-11-03T12:00:00Z",
                labels=[label("docs")],
            ),
            self._issue_payload(base, full_name, 4),
            self._issue_payload(base, full_name, 5, labels=[label("docs")]),
            self._issue_payload(base, full_name, 6),
            self._issue_payload(
                base,
                full_name,
                7,
                pull_request={
                    "url": f"{base}/repos/{full_name}/pulls/7",
                    "html_url": f"https://github.example/{full_name}/pull/7",
                },
            ),
        ]
        return list(reversed(issues))

    def _link(self, base: str, path: str, query: dict[str, str], page: int, last: int) -> str:
        def url(number: int) -> str:
            return f"<{base}{path}?{urlencode({**query, 'page': number})}>"

        links = []
        if page < last:
            links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            links += [f'{url(1)}; rel="first"', f'{url(page - 1)}; rel="prev"']
        return ", ".join(links)

    def _page(
        self, received: Received, items: list[Any], default_per_page: int = 30
    ) -> tuple[list[Any], int, int]:
        per_page = int(received.query.get("per_page", default_per_page))
        page = int(received.query.get("page", 1))
        last = max(1, -(-len(items) // per_page))
        return items[(page - 1) * per_page : page * per_page], page, last

    # Endpoints ---------------------------------------------------------------------------------

    async def _search(self, request: Request) -> Response:
        received, refused = await self._gate(request, "search")
        if refused:
            return refused
        query = received.query.get("q", "")
        if "user:ghost-nobody" in query:
            return self._error(
                422,
                "Validation Failed",
                "search",
                documentation_url=f"{DOCS}/search/search#search-repositories",
                body={
                    "errors": [
                        {
                            "message": SEARCH_422_MESSAGE,
                            "resource": "Search",
                            "field": "q",
                            "code": "invalid",
                        }
                    ]
                },
            )
        base = str(request.base_url).rstrip("/")
        matches = [self._repo_payload(base, f"octo-org/project-{n:02d}") for n in range(1, 26)]
        for number, item in enumerate(matches):
            item["stargazers_count"] = 1000 - number
            item["score"] = 1.0
        items, page, last = self._page(received, matches)
        query_items = {key: value for key, value in received.query.items() if key != "page"}
        return self._json(
            {"total_count": len(matches), "incomplete_results": False, "items": items},
            "search",
            link=self._link(base, request.url.path, query_items, page, last),
        )

    async def _repository(self, request: Request) -> Response:
        received, refused = await self._gate(request, "core")
        if refused:
            return refused
        full_name = f"{request.path_params['owner']}/{request.path_params['name']}"
        if full_name == "octo-org/slow":
            self.events.append("slow started")
            self.slow_started.set()
            await run_in_threadpool(self.slow_release.wait, 20)
            self.events.append("slow answered")
        elif full_name not in REPO_ID:
            return self._error(404, "Not Found", documentation_url=f"{DOCS}/repos/repos#get-a-repository")
        self.events.append(f"answered {received.path}")
        return self._json(self._repo_payload(str(request.base_url).rstrip("/"), full_name))

    async def _languages(self, request: Request) -> Response:
        _, refused = await self._gate(request, "core")
        if refused:
            return refused
        if request.path_params["name"] == "hello-world":
            return self._json({"Shell": 1200, "Python": 53100, "Dockerfile": 400})
        return self._json({})

    async def _latest_release(self, request: Request) -> Response:
        _, refused = await self._gate(request, "core")
        if refused:
            return refused
        if request.path_params["name"] != "hello-world":
            return self._error(
                404, "Not Found", documentation_url=f"{DOCS}/releases/releases#get-the-latest-release"
            )
        base = str(request.base_url).rstrip("/")
        return self._json(
            {
                "url": f"{base}/repos/octo-org/hello-world/releases/1",
                "html_url": "https://github.example/octo-org/hello-world/releases/v1.2.0",
                "id": 1,
                "tag_name": "v1.2.0",
                "target_commitish": "main",
                "name": "v1.2.0 (Lemon)",
                "draft": False,
                "prerelease": False,
                "created_at": "2026-11-01T10:00:00Z",
                "published_at": "2026-11-02T10:00:00Z",
                "author": {"login": "octocat", "id": 1},
                "assets": [],
            }
        )

    async def _issues(self, request: Request) -> Response:
        received, refused = await self._gate(request, "core")
        if refused:
            return refused
        full_name = f"{request.path_params['owner']}/{request.path_params['name']}"
        base = str(request.base_url).rstrip("/")
        if full_name not in REPO_ID:
            return self._error(404, "Not Found")
        if request.method == "POST":
            return self._create_issue(base, full_name, received)
        issues = self._issues_of(base, full_name) if full_name == "octo-org/hello-world" else []
        state = received.query.get("state", "open")
        if state != "all":
            issues = [issue for issue in issues if issue["state"] == state]
        wanted = [name for name in received.query.get("labels", "").split(",") if name]
        issues = [issue for issue in issues if set(wanted) <= {label["name"] for label in issue["labels"]}]
        if "since" in received.query:
            issues = [issue for issue in issues if issue["updated_at"] >= received.query["since"]]
        items, page, last = self._page(received, issues)
        query_items = {key: value for key, value in received.query.items() if key != "page"}
        return self._json(items, link=self._link(base, request.url.path, query_items, page, last))

    def _create_issue(self, base: str, full_name: str, received: Received) -> Response:
        body = received.body or {}
        if not body.get("title"):
            return self._error(
                422,
                "Validation Failed",
                body={"errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]},
            )
        invalid = [login for login in body.get("assignees", []) if login.startswith("ghost")]
        if invalid:
            return self._error(
                422,
                "Validation Failed",
                documentation_url=f"{DOCS}/issues/issues#create-an-issue",
                body={
                    "errors": [
                        {"value": login, "resource": "Issue", "field": "assignees", "code": "invalid"}
                        for login in invalid
                    ]
                },
            )
        number = self.next_issue_number
        self.next_issue_number += 1
        issue = self._issue_payload(
            base,
            full_name,
            number,
            title=body["title"],
            body=body.get("body"),
            labels=[self._label(base, full_name, name) for name in body.get("labels", [])],
            assignees=[{"login": login, "id": 10} for login in body.get("assignees", [])],
            created_at="2026-11-26T12:00:00Z",
            updated_at="2026-11-26T12:00:00Z",
        )
        return self._json(issue, status=201, location=issue["url"])

    async def _issue(self, request: Request) -> Response:
        _, refused = await self._gate(request, "core")
        if refused:
            return refused
        full_name = f"{request.path_params['owner']}/{request.path_params['name']}"
        base = str(request.base_url).rstrip("/")
        number = request.path_params["number"]
        found = [issue for issue in self._issues_of(base, full_name) if issue["number"] == number]
        if full_name != "octo-org/hello-world" or not found:
            return self._error(404, "Not Found", documentation_url=f"{DOCS}/issues/issues#get-an-issue")
        return self._json(found[0])

    async def _comments(self, request: Request) -> Response:
        received, refused = await self._gate(request, "core")
        if refused:
            return refused
        full_name = f"{request.path_params['owner']}/{request.path_params['name']}"
        base = str(request.base_url).rstrip("/")
        number = request.path_params["number"]
        found = [issue for issue in self._issues_of(base, full_name) if issue["number"] == number]
        if not found:
            return self._error(404, "Not Found")
        comments = [
            {
                "id": number * 1000 + n,
                "node_id": f"MDEyOklzc3VlQ29tbWVudDE{n}",
                "url": f"{base}/repos/{full_name}/issues/comments/{number * 1000 + n}",
                "html_url": f"https://github.example/{full_name}/issues/{number}#issuecomment-{number}{n:03d}",
                "body": f"Comment {n} on #{number}",
                "user": {"login": "hubot" if n % 2 else "octocat", "id": 2},
                "created_at": f"2026-11-{(n % 28) + 1:02d}T08:00:00Z",
                "updated_at": f"2026-11-{(n % 28) + 1:02d}T08:00:00Z",
                "issue_url": f"{base}/repos/{full_name}/issues/{number}",
                "author_association": "MEMBER",
            }
            for n in range(1, found[0]["comments"] + 1)
        ]
        items, page, last = self._page(received, comments)
        query_items = {key: value for key, value in received.query.items() if key != "page"}
        return self._json(items, link=self._link(base, request.url.path, query_items, page, last))

    async def _contents(self, request: Request) -> Response:
        received, refused = await self._gate(request, "core")
        if refused:
            return refused
        full_name = f"{request.path_params['owner']}/{request.path_params['name']}"
        base = str(request.base_url).rstrip("/")
        path = request.path_params.get("path", "").strip("/")
        ref = received.query.get("ref")
        if full_name != "octo-org/hello-world":
            return self._error(404, "Not Found")
        if ref not in (None, "main", "v1.2.0"):
            return self._error(
                404,
                f"No commit found for the ref {ref}",
                documentation_url=f"{DOCS}/repos/contents#get-repository-content",
            )
        files = {
            "README.md": (README_AT_TAG if ref == "v1.2.0" else README).encode(),
            "src/app.py": APP_PY.encode(),
            "logo.png": PNG,
            "docs/big.txt": BIG_TEXT.encode(),
        }
        directories = {
            "": ["README.md", "docs", "logo.png", "src", "huge.bin"],
            "src": ["src/app.py", "src/lib"],
            "docs": ["docs/big.txt"],
        }
        if path in directories:
            listing = [self._content_entry(base, full_name, entry, files, ref) for entry in directories[path]]
            return self._json(listing)
        if path == "huge.bin":
            entry = self._content_entry(base, full_name, path, files, ref)
            return self._json({**entry, "size": 5_242_880, "content": "", "encoding": "none"})
        if path not in files:
            return self._error(
                404, "Not Found", documentation_url=f"{DOCS}/repos/contents#get-repository-content"
            )
        encoded = base64.b64encode(files[path]).decode()
        # GitHub wraps the base64 content at 60 characters per line.
        wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
        return self._json(
            {
                **self._content_entry(base, full_name, path, files, ref),
                "content": wrapped,
                "encoding": "base64",
            }
        )

    def _content_entry(
        self, base: str, full_name: str, path: str, files: dict[str, bytes], ref: str | None
    ) -> dict[str, Any]:
        kind = "file" if path in files or path == "huge.bin" else "dir"
        suffix = f"?ref={ref or 'main'}"
        return {
            "type": kind,
            "size": len(files[path]) if path in files else 0,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": f"{abs(hash(path)):040x}"[:40],
            "url": f"{base}/repos/{full_name}/contents/{path}{suffix}",
            "git_url": f"{base}/repos/{full_name}/git/blobs/{abs(hash(path)):040x}"[:200],
            "html_url": f"https://github.example/{full_name}/blob/{ref or 'main'}/{path}",
            "download_url": f"https://raw.github.example/{full_name}/{ref or 'main'}/{path}"
            if kind == "file"
            else None,
            "_links": {"self": f"{base}/repos/{full_name}/contents/{path}{suffix}"},
        }
