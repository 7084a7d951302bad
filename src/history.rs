//! L0: the recorded history (Jepsen-style ops as JSONL) and the state trace.
