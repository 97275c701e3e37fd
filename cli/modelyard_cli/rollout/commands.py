"""``modelyard rollout {status,promote,abort,pause,resume,retry,history} NAME``.

The action commands set ``serving.modelyard.io/action`` after checking that it applies (the
operator acts on it once and removes it); ``status --watch`` follows the object until its
rollout settles. Exit codes: 0 done, 1 an error (one line naming it).
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable

from modelyard_cli.errors import CliError
from modelyard_cli.rollout import render
from modelyard_cli.rollout.kube import KubeModelDeployments, ModelDeployments
from modelyard_operator.api.actions import ACTIONS, HELP, why_not
from modelyard_operator.api.v1alpha1 import ModelDeployment

Connect = Callable[[argparse.Namespace], tuple[ModelDeployments, str]]


def connect(args: argparse.Namespace) -> tuple[ModelDeployments, str]:
    return KubeModelDeployments.connect(args.kubeconfig, args.context)


def settled(md: ModelDeployment) -> bool:
    """No canary moves: promoted, rolled back, or nothing to do."""
    return not md.status.canary.revision and md.status.observed_generation >= md.metadata.generation


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("rollout", help="see and steer canary rollouts")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb, text in [("status", "the rollout's step, weight and checks"),
                       ("history", "the revisions rolled out, newest first"),
                       *((a, HELP[a]) for a in ACTIONS)]:  # fmt: skip
        sub = verbs.add_parser(verb, help=text, description=text)
        sub.add_argument("name", help="the ModelDeployment")
        sub.add_argument("-n", "--namespace", help="default: the kubeconfig context's namespace")
        sub.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
        sub.add_argument("--context", help="kubeconfig context")
        if verb == "status":
            sub.add_argument("-w", "--watch", action="store_true",
                             help="follow until the rollout settles")  # fmt: skip
            sub.add_argument("--timeout", type=int, default=1800, help="watch timeout (s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, *, connect_with: Connect = connect) -> None:
    api, default_namespace = connect_with(args)
    namespace = args.namespace or default_namespace
    now = datetime.datetime.now(datetime.UTC)
    if args.verb == "history":
        print("\n".join(render.history_lines(api.get(namespace, args.name))))
        return
    if args.verb == "status":
        md = api.get(namespace, args.name)
        print("\n".join(render.status_lines(md, now)), flush=True)
        if args.watch and not settled(md):
            _watch(api, namespace, args.name, args.timeout)
        return
    md = api.get(namespace, args.name)
    problem = why_not(args.verb, md.status)
    if problem is not None:
        raise CliError(f"{namespace}/{args.name}: {problem}")
    api.set_action(namespace, args.name, args.verb)
    print(f"{namespace}/{args.name}: {args.verb} requested; the operator acts on it and removes "
          f"the annotation (see `modelyard rollout status {args.name}`)")  # fmt: skip


def _watch(api: ModelDeployments, namespace: str, name: str, timeout: int) -> None:
    last: list[str] = []
    for md in api.follow(namespace, name, timeout):
        now = datetime.datetime.now(datetime.UTC)
        lines = render.status_lines(md, now)
        if lines != last:
            print("\n".join(["", *lines]), flush=True)
            last = lines
        if settled(md):
            return
