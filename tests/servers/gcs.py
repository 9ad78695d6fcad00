"""Google Cloud Storage's JSON API, as far as the real google-cloud-storage client uses it for
whole-object reads and writes, on 127.0.0.1.

The client reaches it through STORAGE_EMULATOR_HOST=server.url (it then sends no credentials).
Requests as google-cloud-storage 3.x makes them (observed, and per
cloud.google.com/storage/docs/json_api/v1):
- GET  /storage/v1/b/{bucket} -> the bucket resource. The client fetches it in a background
  thread the first time it touches a bucket (metadata for its traces).
- GET  /storage/v1/b/{bucket}/o?prefix=P -> the objects whose names start with P, sorted by
  name: `{"kind": "storage#objects", "items": [object resource, ...], "nextPageToken": T}`,
  `items` left out when there are none, `nextPageToken` only when more follow (pass it back as
  `pageToken`). A page holds `maxResults` objects, at most and by default 1,000. `fields` and
  `projection` are ignored (the answer is a superset of what they select); `delimiter`,
  `matchGlob`, `startOffset`, `endOffset`, `versions` and `softDeleted` answer 501.
- GET  /storage/v1/b/{bucket}/o/{object} -> the object resource (metadata); with `alt=media`
  the content, as does
- GET  /download/storage/v1/b/{bucket}/o/{object}?alt=media. The object name is one
  percent-encoded path segment. Headers: Content-Type, ETag, x-goog-generation,
  x-goog-metageneration, x-goog-stored-content-encoding, x-goog-stored-content-length,
  x-goog-hash (`crc32c=<base64>,md5=<base64>`) and x-goog-storage-class. A gzip-encoded
  object is sent as stored with Content-Encoding gzip, as GCS does for clients that accept gzip
  (this client always does); the client decompresses it and checks the hash of what was sent.
- POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart: multipart/related, a JSON part
  (`name`, optional `contentEncoding`, `contentType`, `crc32c`, `md5Hash`) then the media part
  (whose Content-Type is the object's unless the JSON names one). A checksum that does not
  match answers 400, as GCS does; each write gets a new, larger generation. `ifGenerationMatch=N`
  writes only when the live object's generation is N (0: there is no live object), checked and
  written under one lock so concurrent uploads of one name cannot both pass; otherwise 412
  `conditionNotMet`. Other preconditions and other upload types answer 501: mutguard does not
  use them.
- DELETE /storage/v1/b/{bucket}/o/{object} -> 204 with no body (404 when there is no such
  object). Preconditions on it answer 501.
Errors are Google's JSON error body {"error": {"code", "message", "errors": [{"domain":
"global", "reason", "message"}]}}: 404 `No such object: BUCKET/NAME` or `The specified bucket
does not exist.`. `fail(method, path_regex, status, times)` makes matching requests answer an
error (e.g. 503 twice, then normally; or 403 always).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

import google_crc32c

from .http import LocalHTTPServer, Serving

Json = dict[str, Any]

BUCKET = "mutguard-state-test"
PROJECT_NUMBER = "123456789012"
FIRST_GENERATION = 1_767_225_600_000_000  # GCS generations are microsecond timestamps
PAGE_SIZE = 1000  # objects a listing answers at most per page
UNSERVED_LISTING = ("delimiter", "matchGlob", "startOffset", "endOffset", "versions", "softDeleted")
CREATED = "2026-01-01T00:00:00.000Z"

_BUCKET = re.compile(r"/storage/v1/b/([^/]+)")
_OBJECT = re.compile(r"(?:/download)?/storage/v1/b/([^/]+)/o/([^/]+)")
_OBJECTS = re.compile(r"/storage/v1/b/([^/]+)/o")
_UPLOAD = re.compile(r"/upload/storage/v1/b/([^/]+)/o")
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_ERRORS = {
    400: ("invalid", "Invalid request."),
    403: (
        "forbidden",
        "Anonymous caller does not have storage.objects.get access to the Google Cloud Storage "
        "object. Permission 'storage.objects.get' denied on resource (or it may not exist).",
    ),
    404: ("notFound", "Not Found"),
    412: ("conditionNotMet", "At least one of the pre-conditions you specified did not hold."),
    429: ("rateLimitExceeded", "The rate of change requests to the object exceeds the rate limit."),
    500: ("backendError", "We encountered an internal error. Please try again."),
    501: ("notImplemented", "Not implemented by this fake."),
    503: ("backendError", "We encountered an internal error. Please try again."),
}


class ApiError(Exception):
    def __init__(self, status: int, message: str | None = None) -> None:
        reason, default = _ERRORS.get(status, ("backendError", "Error"))
        self.status, self.reason, self.message = status, reason, message or default
        super().__init__(f"{status} {self.message}")

    def body(self) -> Json:
        error = {"domain": "global", "reason": self.reason, "message": self.message}
        return {"error": {"code": self.status, "message": self.message, "errors": [error]}}


@dataclass(frozen=True)
class StoredObject:
    data: bytes  # as stored: compressed when content_encoding is gzip
    content_type: str
    content_encoding: str | None
    generation: int

    def hashes(self) -> tuple[str, str]:
        crc32c = base64.b64encode(google_crc32c.value(self.data).to_bytes(4, "big")).decode()
        md5 = base64.b64encode(hashlib.md5(self.data).digest()).decode()  # noqa: S324 - GCS's
        return crc32c, md5


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    error: ApiError
    remaining: int | None


class _HttpServer(LocalHTTPServer):
    def __init__(self, fake: GcsServer) -> None:
        super().__init__(_Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests ask requests_seen() instead

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        target = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = {k: v[0] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        fake = self.server.fake
        try:
            fake._note(self.command, target.path)
            if self.command == "POST" and (match := _UPLOAD.fullmatch(target.path)):
                self._send_json(200, fake._upload(match.group(1), query, self.headers, body))
            elif self.command == "DELETE" and (match := _OBJECT.fullmatch(target.path)):
                fake._delete(match.group(1), unquote(match.group(2)), query)
                self._send_empty(204)
            elif self.command != "GET":
                raise ApiError(501, f"{self.command} {target.path} is not served by this fake")
            elif match := _OBJECT.fullmatch(target.path):
                bucket, name = match.group(1), unquote(match.group(2))
                if query.get("alt") == "media":
                    self._send_media(bucket, name)
                elif target.path.startswith("/download/"):
                    raise ApiError(400, "Download requests need alt=media.")
                else:
                    self._send_json(200, fake._object_resource(bucket, name))
            elif match := _OBJECTS.fullmatch(target.path):
                self._send_json(200, fake._list(match.group(1), query))
            elif match := _BUCKET.fullmatch(target.path):
                self._send_json(200, fake._bucket_resource(match.group(1)))
            else:
                raise ApiError(404, f"no route for {target.path}")
        except ApiError as err:
            self._send_json(err.status, err.body())

    def _send_media(self, bucket: str, name: str) -> None:
        stored = self.server.fake._stored(bucket, name)
        crc32c, md5 = stored.hashes()
        self.send_response(200)
        self.send_header("Content-Type", stored.content_type)
        self.send_header("Content-Length", str(len(stored.data)))
        if stored.content_encoding:
            self.send_header("Content-Encoding", stored.content_encoding)
        self.send_header("ETag", f'"{_etag(stored.generation)}"')
        self.send_header("x-goog-generation", str(stored.generation))
        self.send_header("x-goog-metageneration", "1")
        self.send_header("x-goog-stored-content-encoding", stored.content_encoding or "identity")
        self.send_header("x-goog-stored-content-length", str(len(stored.data)))
        self.send_header("x-goog-hash", f"crc32c={crc32c},md5={md5}")
        self.send_header("x-goog-storage-class", "STANDARD")
        self.end_headers()
        self.wfile.write(stored.data)

    def _send_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_json(self, status: int, body: Json) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _etag(generation: int) -> str:
    return base64.b64encode(generation.to_bytes(8, "big") + b"\x10\x01").decode()


def multipart_parts(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(Content-Type, content) of each part of a multipart/related body."""
    found = _BOUNDARY.search(content_type)
    if not content_type.startswith("multipart/related") or found is None:
        raise ApiError(400, "Multipart uploads need a multipart/related body.")
    parts = []
    for chunk in body.split(b"--" + found.group(1).encode())[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            break
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line)
        part_type = next((v.strip() for k, v in headers.items() if k.lower() == "content-type"), "")
        parts.append((part_type, content.removesuffix(b"\r\n")))
    return parts


class GcsServer(Serving):
    """Serves the buckets it was given; `fail` makes matching requests answer an error."""

    def __init__(self, buckets: tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._buckets = set(buckets)
        self._objects: dict[tuple[str, str], StoredObject] = {}
        self._generations = itertools.count(FIRST_GENERATION)
        self._faults: list[_Fault] = []
        self._seen: Counter[tuple[str, str]] = Counter()

    def start(self) -> Self:
        self._serve(_HttpServer(self), "gcs-fake")
        return self

    def create_bucket(self, bucket: str) -> None:
        with self._lock:
            self._buckets.add(bucket)

    def stored(self, bucket: str, name: str) -> StoredObject | None:
        with self._lock:
            return self._objects.get((bucket, name))

    def names(self, bucket: str) -> list[str]:
        with self._lock:
            return sorted(name for b, name in self._objects if b == bucket)

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer matching requests (path without query) with a Google error, `times` times
        (None: always)."""
        fault = _Fault(method.upper(), re.compile(path_regex), ApiError(status, message), times)
        with self._lock:
            self._faults.append(fault)

    def requests_seen(self, method: str, path_regex: str = ".*") -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            seen = list(self._seen.items())
        return sum(
            count
            for (seen_method, path), count in seen
            if method.upper() in ("*", seen_method) and pattern.fullmatch(path)
        )

    def _note(self, method: str, path: str) -> None:
        with self._lock:
            self._seen[method, path] += 1
            for fault in self._faults:
                if fault.method in ("*", method) and fault.path.fullmatch(path):
                    if fault.remaining == 0:
                        continue
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    raise fault.error

    def _bucket_resource(self, bucket: str) -> Json:
        self._check_bucket(bucket)
        return {
            "kind": "storage#bucket",
            "selfLink": f"{self.url}/storage/v1/b/{bucket}",
            "id": bucket,
            "name": bucket,
            "projectNumber": PROJECT_NUMBER,
            "metageneration": "1",
            "location": "EU",
            "storageClass": "STANDARD",
            "etag": "CAE=",
            "timeCreated": CREATED,
            "updated": CREATED,
            "locationType": "multi-region",
        }

    def _list(self, bucket: str, query: dict[str, str]) -> Json:
        if unserved := [k for k in UNSERVED_LISTING if k in query]:
            raise ApiError(501, f"{', '.join(unserved)} is not served by this fake")
        self._check_bucket(bucket)
        try:
            page_size = min(int(query.get("maxResults", PAGE_SIZE)), PAGE_SIZE)
            after = base64.urlsafe_b64decode(query.get("pageToken", "")).decode()
        except ValueError:
            raise ApiError(400, "Invalid maxResults or pageToken.") from None
        if page_size < 1:
            raise ApiError(400, "Invalid maxResults.")
        prefix = query.get("prefix", "")
        with self._lock:
            listed = sorted(
                (name, stored)
                for (b, name), stored in self._objects.items()
                if b == bucket and name.startswith(prefix) and name > after
            )
        page = listed[:page_size]
        body: Json = {"kind": "storage#objects"}
        if page:
            body["items"] = [self._resource_of(bucket, name, stored) for name, stored in page]
        if len(listed) > page_size:  # the token is where the next page starts after
            body["nextPageToken"] = base64.urlsafe_b64encode(page[-1][0].encode()).decode()
        return body

    def _object_resource(self, bucket: str, name: str) -> Json:
        return self._resource_of(bucket, name, self._stored(bucket, name))

    def _resource_of(self, bucket: str, name: str, stored: StoredObject) -> Json:
        crc32c, md5 = stored.hashes()
        escaped = quote(name, safe="")
        resource = {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/{stored.generation}",
            "selfLink": f"{self.url}/storage/v1/b/{bucket}/o/{escaped}",
            "mediaLink": (
                f"{self.url}/download/storage/v1/b/{bucket}/o/{escaped}"
                f"?generation={stored.generation}&alt=media"
            ),
            "name": name,
            "bucket": bucket,
            "generation": str(stored.generation),
            "metageneration": "1",
            "contentType": stored.content_type,
            "storageClass": "STANDARD",
            "size": str(len(stored.data)),
            "md5Hash": md5,
            "crc32c": crc32c,
            "etag": _etag(stored.generation),
            "timeCreated": _time_of(stored.generation),
            "updated": _time_of(stored.generation),
            "timeStorageClassUpdated": _time_of(stored.generation),
        }
        if stored.content_encoding:
            resource["contentEncoding"] = stored.content_encoding
        return resource

    def _stored(self, bucket: str, name: str) -> StoredObject:
        self._check_bucket(bucket)
        with self._lock:
            stored = self._objects.get((bucket, name))
        if stored is None:
            raise ApiError(404, f"No such object: {bucket}/{name}")
        return stored

    def _check_bucket(self, bucket: str) -> None:
        with self._lock:
            known = bucket in self._buckets
        if not known:
            raise ApiError(404, "The specified bucket does not exist.")

    def _upload(self, bucket: str, query: dict[str, str], headers: Any, body: bytes) -> Json:
        if query.get("uploadType") != "multipart":
            raise ApiError(501, f"uploadType={query.get('uploadType')} is not served by this fake")
        preconditions = sorted(k for k in query if k.startswith("if"))
        if unserved := [k for k in preconditions if k != "ifGenerationMatch"]:
            raise ApiError(501, f"{', '.join(unserved)} is not served by this fake")
        self._check_bucket(bucket)
        parts = multipart_parts(headers.get("Content-Type", ""), body)
        if len(parts) != 2:
            raise ApiError(400, f"A multipart upload has 2 parts, not {len(parts)}.")
        (_, metadata_json), (media_type, data) = parts
        metadata = json.loads(metadata_json)
        name = metadata.get("name")
        if not name:
            raise ApiError(400, "Required parameter: name")
        candidate = StoredObject(
            data,
            metadata.get("contentType") or media_type or "application/octet-stream",
            metadata.get("contentEncoding"),
            0,
        )
        _check_checksums(metadata, *candidate.hashes())
        with self._lock:
            if "ifGenerationMatch" in query:
                live = self._objects.get((bucket, name))
                if str(live.generation if live else 0) != query["ifGenerationMatch"]:
                    raise ApiError(412)
            stored = StoredObject(
                data, candidate.content_type, candidate.content_encoding, next(self._generations)
            )
            self._objects[bucket, name] = stored
            # The resource of what was written (a later upload may replace it at once).
            return self._resource_of(bucket, name, stored)

    def _delete(self, bucket: str, name: str, query: dict[str, str]) -> None:
        if preconditions := sorted(k for k in query if k.startswith("if")):
            raise ApiError(501, f"{', '.join(preconditions)} is not served by this fake")
        self._check_bucket(bucket)
        with self._lock:
            if self._objects.pop((bucket, name), None) is None:
                raise ApiError(404, f"No such object: {bucket}/{name}")


def _check_checksums(metadata: Json, crc32c: str, md5: str) -> None:
    if "crc32c" in metadata and metadata["crc32c"] != crc32c:
        raise ApiError(
            400,
            f'Provided CRC32C "{metadata["crc32c"]}" doesn\'t match calculated CRC32C "{crc32c}".',
        )
    if "md5Hash" in metadata and metadata["md5Hash"] != md5:
        raise ApiError(
            400, f'Provided MD5 hash "{metadata["md5Hash"]}" doesn\'t match calculated MD5 hash.'
        )


def _time_of(generation: int) -> str:
    when = datetime.datetime.fromtimestamp(generation / 1_000_000, datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
