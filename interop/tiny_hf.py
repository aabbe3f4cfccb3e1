"""Write a tiny Llama model with random weights and a byte-level tokenizer, as `transformers` saves one (seconds).

Run by the transformers-serve recipe with the python of its venv (which has `transformers`, `tokenizers` and
`torch`); it imports nothing from this project so it can run there:

    python tiny_hf.py OUT_DIR

OUT_DIR gets what `save_pretrained` writes: config.json, generation_config.json, model.safetensors,
tokenizer.json and tokenizer_config.json (with a chat template, so chat completions work). Nothing is
downloaded: the tokenizer is a byte-level BPE trained here on a few lines, the weights are drawn with a fixed
seed, so the folder is the same on every machine with the same versions.

The model is random, so its text is noise: what matters is that `transformers serve` loads it, tokenises any
text (byte-level: every byte has a token) and generates, so the server's HTTP behaviour can be judged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SEED = 20240601
HIDDEN = 64
HEADS = 4
FF = 128
LAYERS = 2
CONTEXT = 4096
VOCAB = 320
SPECIAL = ["<unk>", "<s>", "</s>"]
# a chat template, so the server formats messages (the same form as the llama-cpp target's GGUF)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)
LINES = (
    "Hello world, the quick brown fox jumps over the lazy dog.",
    "You are a helpful assistant. Say hello. What is the weather in Paris?",
    "system: user: assistant: tool: The answer is 42, and that is it.",
)


def tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE (GPT-2 style): the 256 byte symbols, a few merges learnt from LINES, three specials."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(LINES, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def write(out: Path) -> None:
    torch.manual_seed(SEED)
    tok = tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=FF, num_hidden_layers=LAYERS,
                         num_attention_heads=HEADS, num_key_value_heads=HEADS, max_position_embeddings=CONTEXT,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id, do_sample=False)
    tmp = out.with_name(out.name + ".tmp")  # written under a temporary name, renamed when complete
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.replace(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tiny_hf.py OUT_DIR", file=sys.stderr)
        return 2
    write(Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
