"""experiments.tcp_sends: when a Gloo send is done, and when each flow of an all-to-all ends."""

import pytest

from adaqp.experiments.tcp_sends import lines_all, lines_one, main


def test_one_reports_median_send_and_receive():
    res = [[{"s1": 0.001}, {"s1": 0.003}, {"s1": 0.002}], [{"r0": 0.08}, {"r0": 0.09}, {"r0": 0.07}]]
    assert lines_one(res) == ["send done 2.00 ms, receive done 80.00 ms (medians)"]


def test_all_reports_when_each_rank_is_out_and_each_flow_ended():
    res = [[{"s1": 0.001, "r1": 0.100}], [{"s0": 0.002, "r0": 0.130}]]
    out = lines_all(res)
    assert out[0] == "rep 1: ranks out at 100, 130 ms (spread 30 ms)"
    assert out[1] == "  rank 0 received from 1 at 100; sends done by 1.0 ms"
    assert out[2] == "  rank 1 received from 0 at 130; sends done by 2.0 ms"


@pytest.mark.parametrize("argv", [["all", "--ranks", "1"], ["one", "--nbytes", "0"], ["nope"]])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_a_bad_link_is_one_line_exit_2(capsys):
    assert main(["one", "--link", "fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tcp_sends: ")
