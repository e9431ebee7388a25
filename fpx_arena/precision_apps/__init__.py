"""Applications of the engine's precision tools that play games: the calibration and quality
text made of the LLM agent's prompts on scripted matches (``calibration``), and the quality
report of precision plans (``quality``). The engine (fpx_arena.llm) measures errors on token
ids and text; what text that is, is decided here."""
