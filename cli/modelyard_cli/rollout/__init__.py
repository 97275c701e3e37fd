"""``modelyard rollout …`` (also ``kubectl modelyard rollout …``): see and steer canary rollouts.

``render`` turns a ModelDeployment into what ``status`` and ``history`` print (pure);
``kube`` reads it and sets the action annotation through the Kubernetes client, with any
kubeconfig kubectl reads; ``commands`` wires the subcommands.
"""
