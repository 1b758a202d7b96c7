"""What an uploaded file is, from its name and its first bytes, and the real reason when it is refused (pure).

- ``adapter_config.json`` -> the config; ``*.safetensors`` -> the weights;
- a ``.zip`` (such as the Inspector's own resize download) -> both files read from it, bounded by the upload limit
  (each member's stated and real size), never extracted to disk;
- ``.bin`` / ``.pt`` / ...: refused as a pickle only when it is one (pickle protocol 2+ or PyTorch's zip of
  ``data.pkl``); a safetensors file under such a name is read as the weights; anything else is named for what it
  is not. Nothing is ever unpickled.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from loralens.adapters.peft_format import CONFIG_NAME, PICKLE_SUFFIXES, WEIGHTS_NAME, refuse_pickle

MAX_ZIP_MEMBERS = 1000


class UploadRefused(Exception):
    """The one-line reason an uploaded file cannot be used."""


@dataclass(frozen=True)
class Upload:
    config: bytes | None = None
    weights: bytes | None = None
    weights_name: str = WEIGHTS_NAME


def limit_text(limit: int) -> str:
    """The upload limit as people read it: "512 MB" (MB of 2²⁰ bytes), or bytes below 1 MB."""
    return f"{limit / 2**20:.4g} MB" if limit >= 2**20 else f"{limit:,}-byte"


def looks_like_pickle(data: bytes) -> bool:
    """Pickle protocol 2-5 (b'\\x80' + protocol), or PyTorch's torch.save zip (holds a data.pkl)."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return any(PurePosixPath(n).name == "data.pkl" for n in archive.namelist()[:MAX_ZIP_MEMBERS])
        except (zipfile.BadZipFile, ValueError, OSError):
            return False
    return False


def looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    (length,) = struct.unpack("<Q", data[:8])
    return 2 <= length <= len(data) - 8 and data[8:9] == b"{"


def _what_it_is(data: bytes) -> str:
    if not data:
        return "an empty file"
    try:
        data[:4096].decode("utf-8")
        return f"a {len(data):,}-byte text file"
    except UnicodeDecodeError:
        return f"a {len(data):,}-byte binary file"


def classify(name: str, data: bytes, limit: int) -> Upload:
    """The part(s) of an adapter that this uploaded file holds; UploadRefused says why it holds none."""
    lower = name.lower()
    if len(data) > limit:
        raise UploadRefused(f"{name} is larger than the {limit_text(limit)} limit")
    if lower.endswith(".json"):
        return Upload(config=data)
    if lower.endswith(".safetensors"):
        return Upload(weights=data, weights_name=name)
    if lower.endswith(".zip"):
        return read_zip(name, data, limit)
    if lower.endswith(PICKLE_SUFFIXES):
        if looks_like_pickle(data):
            raise UploadRefused(str(refuse_pickle(PurePosixPath(name).name)))
        if looks_like_safetensors(data):
            return Upload(weights=data, weights_name=name)
        raise UploadRefused(f"{name} is {_what_it_is(data)}, neither a pickle nor a safetensors file; expected "
                            f"{CONFIG_NAME} and {WEIGHTS_NAME}")
    raise UploadRefused(f"{name}: expected {CONFIG_NAME}, a .safetensors file, or a .zip of both")


def read_zip(name: str, data: bytes, limit: int) -> Upload:
    """adapter_config.json + adapter_model.safetensors from a zip (at its top or in one folder)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UploadRefused(f"{name} is not a readable zip archive") from None
    with archive:
        infos = [i for i in archive.infolist()[: MAX_ZIP_MEMBERS + 1] if not i.is_dir()]
        if len(infos) > MAX_ZIP_MEMBERS:
            raise UploadRefused(f"{name} holds more than {MAX_ZIP_MEMBERS} files")
        if any(PurePosixPath(i.filename).name == "data.pkl" for i in infos):
            raise UploadRefused(str(refuse_pickle(PurePosixPath(name).name)))
        found: dict[str, list[zipfile.ZipInfo]] = {CONFIG_NAME: [], WEIGHTS_NAME: []}
        for info in infos:
            base = PurePosixPath(info.filename).name
            if base in found:
                found[base].append(info)
        if not found[CONFIG_NAME] or not found[WEIGHTS_NAME]:
            missing = " and ".join(k for k, v in found.items() if not v)
            raise UploadRefused(f"{name} holds no {missing}")
        if len(found[CONFIG_NAME]) > 1 or len(found[WEIGHTS_NAME]) > 1:
            folders = sorted(str(PurePosixPath(i.filename).parent) for i in found[CONFIG_NAME])
            raise UploadRefused(f"{name} holds {len(found[CONFIG_NAME])} adapters ({', '.join(folders)}); "
                                "upload one of them")
        parts = {}
        for key, (info,) in found.items():
            if info.file_size > limit:
                raise UploadRefused(f"{name}: {info.filename} is larger than the {limit_text(limit)} limit")
            try:
                with archive.open(info) as member:
                    content = member.read(limit + 1)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError) as error:
                raise UploadRefused(f"{name}: cannot read {info.filename} ({error})") from None
            if len(content) > limit:
                raise UploadRefused(f"{name}: {info.filename} is larger than the {limit_text(limit)} limit")
            parts[key] = content
    stem = PurePosixPath(name).stem
    return Upload(config=parts[CONFIG_NAME], weights=parts[WEIGHTS_NAME], weights_name=f"{stem}.safetensors")


REJECTIONS = {
    "max-file-size": "is larger than the {limit} limit",
    "max-total-size": "would take the upload past the {limit} limit",
    "accept": f"is not {CONFIG_NAME}, a .safetensors file or a .zip of both",
    "max-files": "is one file too many",
    "duplicate": "was already added",
    "filter": "was refused by the browser",
}


def rejection_message(entries: object, limit: int) -> str:
    """One line for the files the browser refused before sending, with the reason Quasar gives for each."""
    items = entries if isinstance(entries, list) else []
    lines = []
    for entry in items or [{}]:
        entry = entry if isinstance(entry, dict) else {}
        name = str(entry.get("name") or "a file")
        reason = REJECTIONS.get(str(entry.get("reason") or ""), "was refused by the browser ({reason})")
        lines.append(f"{name} " + reason.format(limit=limit_text(limit), reason=entry.get("reason") or "no reason"))
    return "; ".join(lines)
