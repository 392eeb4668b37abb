from stages.llm.request_cache import RequestCache, request_key
from stages.llm.requests import ChatRequest, Generation, Sampling

MODEL = {"model": "some/model", "dtype": "bfloat16"}
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
SAMPLING = Sampling(temperature=0.7, top_p=0.95, max_tokens=64, repetition_penalty=1.1)
SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}}}


def request(**changes) -> ChatRequest:
    values = {"messages": MESSAGES, "sampling": SAMPLING, "seed": 7, "json_schema": SCHEMA} | changes
    return ChatRequest(**values)


def test_the_key_changes_with_model_prompt_sampling_schema_and_seed():
    base = request_key(MODEL, request())
    assert request_key(dict(MODEL), request()) == base  # equal values, equal key
    variants = [
        request_key({**MODEL, "model": "other/model"}, request()),
        request_key({**MODEL, "dtype": "float32"}, request()),
        request_key(MODEL, request(messages=[MESSAGES[0], {"role": "user", "content": "hello"}])),
        request_key(MODEL, request(messages=[{"role": "system", "content": "be long"}, MESSAGES[1]])),
        request_key(MODEL, request(sampling=Sampling(0.7, 0.95, 65, 1.1))),
        request_key(MODEL, request(sampling=Sampling(0.8, 0.95, 64, 1.1))),
        request_key(MODEL, request(json_schema=None)),
        request_key(MODEL, request(seed=8)),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_round_trip_marks_a_hit(tmp_path):
    cache = RequestCache(tmp_path)
    key = request_key(MODEL, request())
    assert cache.get(key) is None
    cache.put(key, Generation(text='{"question": "x"}', finish_reason="stop", prompt_tokens=9, completion_tokens=5))
    hit = cache.get(key)
    assert hit is not None and hit.cache_hit
    assert (hit.text, hit.finish_reason, hit.prompt_tokens, hit.completion_tokens) == ('{"question": "x"}', "stop", 9, 5)
    assert not list(tmp_path.rglob(".*.tmp-*"))  # no temporary files left behind


def test_a_torn_entry_is_a_miss_and_engine_refusals_are_not_kept(tmp_path):
    cache = RequestCache(tmp_path)
    key = request_key(MODEL, request())
    cache.put(key, Generation(text="ok", finish_reason="stop"))
    next(tmp_path.rglob("*.json")).write_text('{"text": "half')  # as if killed mid-write
    assert cache.get(key) is None
    other = request_key(MODEL, request(seed=99))
    cache.put(other, Generation(error="over_context", error_detail="too long"))
    assert cache.get(other) is None
