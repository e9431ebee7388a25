"""Our own game-playing policies: record the scripted experts (dataset.py), train a Llama
decoder from scratch on their decisions (train.py, tokenizer in vocab.py), and evaluate the
result as an LLM agent (evaluate.py). The shipped models arena-tiny and arena-small in
fpx_arena/models/ were made with these commands; each model card says how."""
