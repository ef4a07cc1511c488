from mixer.job import run_replay as _run_replay  # placeholder until the replay stage's own job lands


def run_replay(context, inputs, output, settings=None):
    return _run_replay(context, inputs, output)
