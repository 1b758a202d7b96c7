"""The Inspector page with the other layouts: a kohya file uploaded alone opens (format shown), a LyCORIS file is
named, a PEFT weights file still waits for its adapter_config.json."""

from __future__ import annotations

from pathlib import Path

from formats_helpers import kohya_file, rand
from nicegui import ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User
from safetensors.numpy import save_file

from loralens.app.inspector.page import sample_path


async def upload(user: User, name: str, data: bytes) -> None:
    found = list(user.find(marker="inspector-upload").elements)
    assert len(found) == 1 and isinstance(found[0], ui.upload)
    await found[0].handle_uploads([SmallFileUpload(name, "application/octet-stream", data)])


async def test_kohya_upload_opens_alone_with_its_format(user: User, tmp_path: Path) -> None:
    kohya_file(tmp_path / "lora.safetensors")
    await user.open("/inspector")
    await user.should_see("Format", retries=300)
    await upload(user, "lora.safetensors", (tmp_path / "lora.safetensors").read_bytes())
    await user.should_see("Showing upload lora.safetensors", retries=300)
    await user.should_see("kohya: kohya sd-scripts layout", retries=300)


async def test_lycoris_upload_is_named_and_peft_weights_wait(user: User, tmp_path: Path) -> None:
    save_file({"lora_unet_x.hada_w1_a": rand(8, 4)}, str(tmp_path / "loha.safetensors"))
    await user.open("/inspector")
    await user.should_see("Format", retries=300)
    await upload(user, "loha.safetensors", (tmp_path / "loha.safetensors").read_bytes())
    await user.should_see("this is a LyCORIS LoHa file; loralens reads LoRA factors only", retries=300)
    await upload(user, "adapter_model.safetensors", (sample_path() / "adapter_model.safetensors").read_bytes())
    await user.should_see("now add adapter_config.json", retries=300)


def test_resized_download_keeps_the_kohya_layout(tmp_path: Path) -> None:
    import io
    import zipfile

    from loralens.adapters import load_adapter
    from loralens.app.inspector.page import resized_zip

    kohya_file(tmp_path / "lora.safetensors")
    data = resized_zip(load_adapter(tmp_path / "lora.safetensors"), 2, None)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["lora.safetensors"]
        (tmp_path / "out.safetensors").write_bytes(archive.read("lora.safetensors"))
    back = load_adapter(tmp_path / "out.safetensors")
    assert back.format == "kohya" and {m.r for m in back.modules} == {2}
