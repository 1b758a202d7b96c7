"""kohya module names <-> dotted module paths.

kohya names a module ``prefix + "_" + path.replace(".", "_")`` (networks/lora.py: ``lora_unet_``, ``lora_te_``,
``lora_te1_`` / ``lora_te2_`` for SDXL's two text encoders). Going back is not defined in general: an underscore
may have been a dot or part of a name (``self_attn``). So the inverse accepts a split only when every part is a
known module name or a number, from a vocabulary of the names used by transformers' text models and diffusers'
UNets and transformers; anything else is refused with the part it could not place.
"""

from __future__ import annotations

from loralens.errors import AdapterError

#: kohya prefix -> diffusers component (the PEFT-style diffusers key prefix)
KOHYA_PREFIXES = {
    "lora_unet_": "unet",
    "lora_te1_": "text_encoder",
    "lora_te2_": "text_encoder_2",
    "lora_te3_": "text_encoder_3",
    "lora_te_": "text_encoder",
    "lora_transformer_": "transformer",
}
COMPONENT_PREFIX = {"unet": "lora_unet_", "text_encoder": "lora_te_", "text_encoder_2": "lora_te2_",
                    "text_encoder_3": "lora_te3_", "transformer": "lora_transformer_"}

_WORDS = """
model layers layer h self_attn self attn attention mlp q_proj k_proj v_proj o_proj out_proj gate_proj up_proj
down_proj dense query key value output intermediate c_attn c_proj c_fc fc1 fc2 encoder decoder embed_tokens
lm_head transformer bert embeddings word_embeddings position_embeddings token_type_embeddings wte wpe
text_model final_layer_norm token_embedding position_embedding text_projection qkv_proj gate_up_proj
query_key_value dense_h_to_4h dense_4h_to_h self_attention block_sparse_moe experts w1 w2 w3 gate shared_expert
cls predictions transform embed_positions shared_expert_gate wq wk wv wo Wqkv out_lin q_lin k_lin v_lin lin1 lin2 ffn
down_blocks up_blocks mid_block attentions resnets transformer_blocks attn1 attn2 to_q to_k to_v to_out proj_in
proj_out ff net proj norm norm1 norm2 norm3 conv1 conv2 conv_shortcut time_emb_proj conv_in conv_out
time_embedding linear_1 linear_2 add_embedding downsamplers upsamplers conv emb_layers in_layers out_layers
input_blocks middle_block output_blocks skip_connection time_embed label_emb op
add_q_proj add_k_proj add_v_proj to_add_out ff_context single_transformer_blocks proj_mlp norm_out linear
context_embedder x_embedder time_text_embed timestep_embedder text_embedder guidance_embedder linear_1 linear_2
double_blocks single_blocks img_attn txt_attn img_mlp txt_mlp img_mod txt_mod qkv lin linear1 linear2 modulation
"""
VOCABULARY = frozenset(_WORDS.split())
_PARTS = frozenset(part for word in VOCABULARY for part in word.split("_"))
_LONGEST = max(word.count("_") for word in VOCABULARY) + 1


def to_kohya(component_prefix: str, path: str) -> str:
    """kohya's name of the module at ``path`` (``lora_te_`` + ``text_model_encoder_layers_0_self_attn_q_proj``)."""
    return component_prefix + path.replace(".", "_")


def split_prefix(name: str) -> tuple[str, str]:
    """(kohya prefix, the rest) of a kohya module name; AdapterError if it has none of kohya's prefixes."""
    for prefix in KOHYA_PREFIXES:
        if name.startswith(prefix):
            return prefix, name[len(prefix):]
    raise AdapterError(f"has none of kohya's prefixes ({', '.join(KOHYA_PREFIXES)})", where=name)


def segmentations(rest: str, limit: int = 256) -> list[str]:
    """Every way (up to ``limit``) to read ``rest`` as dotted parts that are each a known name or a number."""
    tokens = rest.split("_")
    found: list[str] = []

    def walk(i: int, parts: list[str]) -> None:
        if len(found) >= limit:
            return
        if i == len(tokens):
            found.append(".".join(parts))
            return
        for n in range(min(_LONGEST, len(tokens) - i), 0, -1):
            candidate = "_".join(tokens[i:i + n])
            if candidate in VOCABULARY or (n == 1 and candidate.isdigit()):
                walk(i + n, [*parts, candidate])

    walk(0, [])
    return found


def from_kohya(rest: str, where: str) -> str:
    """The dotted path of a kohya name without its prefix: of the readings whose every part is a known module
    name or a number, the one with the fewest parts (``self_attn`` over ``self.attn``); AdapterError when there
    is none or a tie (naming the part, or the readings)."""
    found = segmentations(rest)
    fewest = min((f.count(".") for f in found), default=0)
    found = [f for f in found if f.count(".") == fewest]  # the reading with the longest known names
    if len(found) == 1:
        return found[0]
    if found:
        raise AdapterError(f"cannot place the dots in {rest!r}: it reads as {' or '.join(map(repr, found))}",
                           where=where)
    tokens = rest.split("_")
    known = [t for t in tokens if t.isdigit() or t in _PARTS]
    unknown = next((t for t in tokens if t not in known), tokens[0])
    raise AdapterError(f"cannot place the dots in {rest!r}: {unknown!r} is not part of a module name loralens "
                       "knows, so the path is ambiguous (kohya writes every '.' as '_')", where=where)
