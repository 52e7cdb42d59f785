"""The scheduled trading agent: context, providers (builtin, llm), call budget, one run."""
