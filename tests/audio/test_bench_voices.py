"""benchmarks/voices.py: the table it prints."""
from benchmarks.voices import VoiceResult, markdown_table, summary


def test_summary_reports_means_shares_and_absent_voices():
    rows = [{"wer": w, "dnsmos_ovrl": 3.0, "dnsmos_p808": 3.5, "dnsmos_sig": 3.2, "dnsmos_bak": 4.0,
             "duration": 2.0, "cpu_s": 0.2} for w in (0.0, 0.1, 0.5, 1.0)]
    table = [summary(VoiceResult("a", rows=rows, failed=["x"]), 0.25), summary(VoiceResult("b", absent="gone"), 0.25)]
    assert table[0]["mean WER"] == "0.400" and table[0]["WER > 0.25"] == "50.0%"
    assert table[0]["RTF (1 core)"] == "0.100" and table[0]["clips"] == "4 (1 failed)"
    assert table[1] == {"voice": "b", "clips": "absent"}
    lines = markdown_table(table).splitlines()
    assert lines[0].startswith("| voice | mean WER") and lines[3].startswith("| b |")
