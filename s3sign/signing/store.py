"""The S3 calls the server itself makes: multipart create/complete/abort, HEAD, DELETE, LIST.

They go through the same SigV4 signer as every URL the server hands out (a
pre-signed URL, used at once), over the project's one transport (keep-alive
connections shared by threads; TLS, proxies and limits as for every HTTP call:
:mod:`s3sign.http.transport`). The server never sends or receives an object's bytes:
only these small requests, each answer at most 1 MiB; each call, retries
included, ends within 25 s (assembling a multipart upload: 150 s).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from xml.sax.saxutils import escape

from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.http.wire import Response, network_problem
from s3sign.objectrules import NO_RULES, RULE_HEADERS, ObjectRules
from s3sign.protocol import STORAGE_UNAVAILABLE
from s3sign.retry import RETRY_STATUSES, backoff
from s3sign.s3xml import S3_NAMESPACE, s3_error, xml_text
from s3sign.signing.presign import Method, Presigner, SignRequest
from s3sign.units import http_date

# Seconds for one answer, and for a call with its retries: a worker waits on these calls,
# and a thread of the server's pool is held meanwhile. Assembling a multipart upload may
# take S3 a while (it streams whitespace until done): complete gets longer.
ANSWER_TIMEOUT, CALL_TIMEOUT = 10.0, 25.0
COMPLETE_ANSWER_TIMEOUT, COMPLETE_CALL_TIMEOUT = 120.0, 150.0
PROBE_TIMEOUT = 3.0  # seconds: reachable(), for /readyz, once
ATTEMPTS = 4  # a worker waits on these calls: retry briefly, then report
MAX_OPEN_UPLOADS = 10_000  # listed for one run at most (a seal aborts them; lifecycle: the rest)
# S3 error codes caused by what the worker sent (an upload id, a part list), not by the server.
_CALLER_ERRORS = {
    "NoSuchUpload": 404,
    "InvalidRequest": 422,
    "InvalidArgument": 422,
    "InvalidPart": 422,
    "InvalidPartOrder": 422,
    "EntityTooSmall": 422,
}


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD (or a listing) tells about a stored object, as the store said it.

    ``checksum`` is the stored ``x-amz-checksum-sha256`` as is: the SHA-256 of a
    single PUT's body, or for a multipart object S3's composite (the SHA-256 of the
    parts' SHA-256s) written ``BASE64-N`` by AWS and SeaweedFS but without ``-N`` by
    others (moto). Which one it is, the caller decides from what it knows, not from
    the value's shape; ``checksum_type`` (``COMPOSITE``, ``FULL_OBJECT``) where the
    store says.
    """

    size: int
    etag: str
    checksum: str | None = None
    checksum_type: str | None = None
    last_modified: str | None = None  # ISO 8601, UTC, as the store said
    content_type: str | None = None  # from a HEAD; a listing does not say
    # from a HEAD, the headers s3sign.objectrules checks (encryption, class, tag count)
    rule_headers: tuple[tuple[str, str], ...] = ()

    @property
    def multipart(self) -> bool:
        """Does the store show it as assembled from parts (an ETag ``HEX-N``)? A guess
        for objects this server did not assemble itself: never a reason to delete."""
        head, _, count = self.etag.rpartition("-")
        return bool(head) and count.isdigit()


class StoreError(Exception):
    """S3 answered with an error or could not be reached."""

    def __init__(
        self, message: str, code: str = "storage_error", status: int = 502, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.transient = transient  # the store was down or overloaded: asking again may work

    @property
    def answer_code(self) -> str:
        """The protocol code a worker gets for this failure: ``storage_unavailable`` (ask
        again) when it was transient, else S3's own code."""
        return STORAGE_UNAVAILABLE if self.transient else self.code


class ObjectStore:
    """One bucket, reached with the credentials of ``presigner()`` (re-read on each call)."""

    def __init__(
        self,
        presigner: Callable[[], Presigner],
        bucket: str,
        transport: Transport | None = None,
        rules: ObjectRules = NO_RULES,
    ) -> None:
        """``transport``: the network rules (``Settings.transport``); direct when not given,
        as for the embedded store on 127.0.0.1. ``rules``: the bucket's, sent with every
        object this store writes itself (seals, revocations, multipart creates)."""
        self._presigner = presigner
        self.bucket = bucket
        self.rules = rules
        transport = transport or Transport()
        self._http = Connections(transport, "s3", ANSWER_TIMEOUT)
        probing = replace(transport, connect_timeout=PROBE_TIMEOUT)
        self._probe = Connections(probing, "s3", PROBE_TIMEOUT)

    def _call(
        self,
        method: Method,
        key: str,
        query: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        ok: Sequence[int] = (200,),
        timeouts: tuple[float, float] = (ANSWER_TIMEOUT, CALL_TIMEOUT),
    ) -> Response:
        """One object-level call, signed afresh for each attempt."""
        request = SignRequest(
            self.bucket,
            key,
            method=method,
            expires=60,
            query=tuple(query),
            headers=tuple((headers or {}).items()),
        )
        return self.send_signed(request, body, ok=ok, timeouts=timeouts)

    def send_signed(
        self,
        request: SignRequest,
        body: bytes = b"",
        *,
        ok: Sequence[int] | None = (200,),
        edit: Callable[[str, dict[str, str]], tuple[str, dict[str, str]]] | None = None,
        timeouts: tuple[float, float] = (ANSWER_TIMEOUT, CALL_TIMEOUT),
    ) -> Response:
        """``request`` signed afresh for each attempt and sent with ``body``; ``edit`` may
        change the URL and headers after signing (the store check's tampering); with
        ``ok=None`` any answer but a retried one is returned as it is. ``timeouts``:
        seconds for each answer, and for the call with its retries."""

        def signed() -> tuple[str, dict[str, str]]:
            answer = self._presigner().sign(request)
            url, headers = answer.url, dict(answer.headers)
            return edit(url, headers) if edit else (url, headers)

        return self._send(request.method, signed, body, ok, timeouts)

    def _send(
        self,
        method: str,
        sign: Callable[[], tuple[str, dict[str, str]]],
        body: bytes,
        ok: Sequence[int] | None,
        timeouts: tuple[float, float] = (ANSWER_TIMEOUT, CALL_TIMEOUT),
    ) -> Response:
        """Send with a few quick retries when the store is down or overloaded, all within
        the call's deadline."""
        answer_timeout, call_timeout = timeouts
        deadline = time.monotonic() + call_timeout
        response: Response | None = None
        problem = ""
        for attempt in range(1, ATTEMPTS + 1):
            url, headers = sign()
            wait = min(answer_timeout, max(deadline - time.monotonic(), 0.1))
            try:
                response = self._http.request(method, url, headers, body, timeout=wait)
            except OSError as exc:  # first: a TLS failure is a ValueError too
                response, problem = None, network_problem(exc)
            except ValueError as exc:  # a header that cannot be sent: asking again will not help
                message = f"the request cannot be sent: {exc}"
                raise StoreError(message, "invalid_request", 422) from None
            else:
                if response.status not in RETRY_STATUSES:
                    break
            pause = backoff(attempt, base=0.1, cap=2.0)
            if attempt == ATTEMPTS or time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
        if response is None:
            raise StoreError(f"the object store is unreachable: {problem}", transient=True)
        if ok is not None and response.status not in ok:
            code = _error_code(response.data) or f"HTTP {response.status}"
            status = _CALLER_ERRORS.get(code, 502)  # else: our credentials or the store failed
            transient = response.status in RETRY_STATUSES
            raise StoreError(f"the object store refused {method} ({code})", code, status, transient)
        return response

    def create_multipart(self, key: str, content_type: str | None, sha256: bool = False) -> str:
        """Start a multipart upload (with ``sha256``, one whose parts carry SHA-256s); its id."""
        headers = dict(self.rules.headers)
        if content_type:
            headers["Content-Type"] = content_type
        if sha256:
            headers["x-amz-checksum-algorithm"] = "SHA256"
        response = self._call("POST", key, [("uploads", "")], headers=headers)
        upload_id = xml_text(response.data, "UploadId")
        if not upload_id:
            raise StoreError("the object store did not return an upload id")
        return upload_id

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str, str | None]],
        *,
        if_none_match: bool = False,
    ) -> str:
        """Assemble the parts (number, etag, base64 SHA-256 or None); the object's etag.
        ``if_none_match``: only where no object is stored under ``key`` (``If-None-Match:
        *``; else ``StoreError`` with code ``PreconditionFailed``)."""
        body = "".join(
            f"<Part><PartNumber>{number}</PartNumber><ETag>{escape(etag)}</ETag>"
            + (f"<ChecksumSHA256>{escape(sha256)}</ChecksumSHA256>" if sha256 else "")
            + "</Part>"
            for number, etag, sha256 in parts
        )
        xml = f"<CompleteMultipartUpload>{body}</CompleteMultipartUpload>".encode()
        response = self._call(
            "POST",
            key,
            [("uploadId", upload_id)],
            body=xml,
            headers={"If-None-Match": "*"} if if_none_match else None,
            timeouts=(COMPLETE_ANSWER_TIMEOUT, COMPLETE_CALL_TIMEOUT),
        )
        # S3 may answer 200 with an <Error> body when assembly fails late.
        failure = _error_code(response.data)
        if failure:
            raise StoreError(f"completing the upload failed ({failure})")
        return (xml_text(response.data, "ETag") or "").strip('"')

    def read_small(self, key: str) -> bytes | None:
        """A small object of the server's own (its answer is bounded like any), or None
        when there is none."""
        response = self._call("GET", key, ok=(200, 404))
        return response.data if response.status == 200 else None

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Store a small object of the server's own (a run's seal)."""
        request = SignRequest(
            self.bucket,
            key,
            size=len(body),
            content_type=content_type,
            expires=60,
            headers=self.rules.headers,
        )
        self.send_signed(request, body)

    def abort_multipart(self, key: str, upload_id: str) -> bool:
        """Abandon an upload and free its parts: False when there was no such upload (it was
        completed, or aborted before)."""
        response = self._call("DELETE", key, [("uploadId", upload_id)], ok=(204, 200, 404))
        return response.status != 404

    def head(self, key: str) -> ObjectInfo | None:
        """Size, etag and stored SHA-256 of an object; None when there is none."""
        response = self._call(
            "HEAD", key, headers={"x-amz-checksum-mode": "ENABLED"}, ok=(200, 404)
        )
        if response.status == 404:
            return None
        return ObjectInfo(
            size=_size(response.headers.get("content-length", "")),
            etag=response.headers.get("etag", "").strip('"'),
            checksum=response.headers.get("x-amz-checksum-sha256") or None,
            checksum_type=response.headers.get("x-amz-checksum-type") or None,
            last_modified=_iso(http_date(response.headers.get("last-modified", ""))),
            content_type=response.headers.get("content-type") or None,
            rule_headers=tuple(
                (name, response.headers[name]) for name in RULE_HEADERS if name in response.headers
            ),
        )

    def delete_if(self, key: str, etag: str) -> bool:
        """Delete the object only while its ETag is ``etag``: True once no such object is
        left (deleted, or none was there), False when another object is kept.

        ``If-Match`` makes the check and the delete one step on stores that honour it
        (AWS, SeaweedFS, moto); elsewhere a HEAD just before narrows the race.
        """
        info = self.head(key)
        if info is None:
            return True
        if info.etag != etag:
            return False
        quoted = f'"{etag}"'
        response = self._call("DELETE", key, headers={"If-Match": quoted}, ok=(204, 200, 412))
        return response.status != 412

    def list_objects(
        self, prefix: str, start_after: str, token: str | None = None, max_keys: int = 1000
    ) -> tuple[list[tuple[str, ObjectInfo]], str | None]:
        """One ListObjectsV2 page: up to ``max_keys`` (key, size and etag), and the next token."""
        query = [("list-type", "2"), ("max-keys", str(max_keys)), ("prefix", prefix)]
        if token:
            query.append(("continuation-token", token))
        elif start_after:
            query.append(("start-after", start_after))
        root = self._bucket_listing(tuple(query), "listing")
        objects = []
        for item in root.iter(S3_NAMESPACE + "Contents"):
            key = item.findtext(S3_NAMESPACE + "Key") or ""
            size = _size(item.findtext(S3_NAMESPACE + "Size") or "")
            etag = (item.findtext(S3_NAMESPACE + "ETag") or "").strip('"')
            modified = item.findtext(S3_NAMESPACE + "LastModified") or None
            objects.append((key, ObjectInfo(size=size, etag=etag, last_modified=modified)))
        truncated = root.findtext(S3_NAMESPACE + "IsTruncated") == "true"
        return objects, root.findtext(S3_NAMESPACE + "NextContinuationToken") if truncated else None

    def open_uploads(
        self, prefix: str, most: int = MAX_OPEN_UPLOADS, page: int = 1000
    ) -> list[tuple[str, str]]:
        """The multipart uploads under ``prefix`` neither completed nor aborted, as (key,
        upload id): page after page of ListMultipartUploads (``page`` at a time), up to
        ``most``. S3 pages by key and upload id, SeaweedFS 4.48 by upload id alone (and
        names no next key); a store that says "more" without moving a marker on ends the
        list."""
        uploads: list[tuple[str, str]] = []
        key_marker = upload_marker = ""
        fields = (S3_NAMESPACE + "Key", S3_NAMESPACE + "UploadId")
        while len(uploads) < most:
            query = [("max-uploads", str(page)), ("prefix", prefix), ("uploads", "")]
            if key_marker:  # S3: the two markers go together
                query.append(("key-marker", key_marker))
            if upload_marker:  # SeaweedFS pages by upload id alone, and names no key
                query.append(("upload-id-marker", upload_marker))
            root = self._bucket_listing(tuple(query), "list of uploads")
            found = root.iter(S3_NAMESPACE + "Upload")
            uploads += [
                (item.findtext(fields[0]) or "", item.findtext(fields[1]) or "") for item in found
            ]
            markers = (
                root.findtext(S3_NAMESPACE + "NextKeyMarker") or "",
                root.findtext(S3_NAMESPACE + "NextUploadIdMarker") or "",
            )
            more = root.findtext(S3_NAMESPACE + "IsTruncated") == "true"
            if not more or not any(markers) or markers == (key_marker, upload_marker):
                break
            key_marker, upload_marker = markers
        return uploads[:most]

    def _bucket_listing(self, query: tuple[tuple[str, str], ...], what: str) -> ET.Element:
        """A signed GET of the bucket with ``query`` (a listing), its answer as XML."""
        response = self._send(
            "GET",
            lambda: (self._presigner().sign_bucket_get(self.bucket, query), {}),
            b"",
            (200,),
        )
        try:
            return ET.fromstring(response.data)  # noqa: S314 - the store's own response
        except ET.ParseError:
            raise StoreError(f"the object store's {what} is not XML") from None

    def reachable(self, key: str) -> bool:
        """True when the bucket answers a signed GET of ``key`` (under the server's own
        prefix, which its credentials may read) within 3 seconds, once: for
        ``/readyz``, which must answer quickly whatever the store does."""
        signed = self._presigner().sign(SignRequest(self.bucket, key, method="GET", expires=60))
        try:  # the first byte at most, should someone have stored an object there
            response = self._probe.request("GET", signed.url, {"Range": "bytes=0-0"})
        except OSError:
            return False
        if response.status not in (200, 206, 404, 416):
            return False
        return _error_code(response.data) != "NoSuchBucket"


def _iso(moment: datetime | None) -> str | None:
    """A time as a listing writes it (ISO 8601, UTC, milliseconds)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z") if moment else None


def _size(text: str) -> int:
    """A size the store sent: -1 when it is not a number."""
    return int(text) if text.isdigit() else -1


def _error_code(document: str | bytes) -> str | None:
    error = s3_error(document)
    return error[0] if error else None
