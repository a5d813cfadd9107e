using System.Text;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Policy text: the input as UTF-8 through <see cref="AccessPolicy.TryParse"/>, and a policy that parses is evaluated
/// against a fixed peer (alice's identity, principal, chain length and attributes, plus some context). Nothing is
/// expected to throw: <c>TryParse</c> returns its <see cref="PolicySyntaxException"/>, and <c>Evaluate</c> never throws.
/// Invariant: the policy's text parses again to a policy with the same decision.
/// </summary>
public sealed class PolicyTarget : IFuzzTarget
{
    private static readonly PolicyInput Peer = PeerPolicyInput.Create(
        FuzzWorld.Alice.Identifier,
        FuzzWorld.Principal,
        2,
        AttributeSet.Parse(["env=prod", "env=staging", "role=billing", "level=3"]),
        new Dictionary<string, PolicyValue>
        {
            ["resource"] = PolicyValue.FromString("ledger"),
            ["hour"] = PolicyValue.FromInteger(12),
            ["weekend"] = PolicyValue.FromBoolean(false),
        });

    public string Name => "policy";

    public void Run(ReadOnlySpan<byte> input)
    {
        var text = Encoding.UTF8.GetString(input);
        if (!AccessPolicy.TryParse(text, out var policy, out _))
        {
            return;
        }

        var decision = policy.Evaluate(Peer);
        if (!AccessPolicy.TryParse(policy.Text, out var again, out _) || again.Evaluate(Peer) != decision)
        {
            throw new FuzzInvariantException("A policy's own text does not parse back to the same decision.");
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        string[] policies =
        [
            "subject.role == \"billing\" && subject.env in [\"staging\", \"prod\"]",
            "peer.chain_length <= 2 || !has(subject.admin)",
            "peer.principal == \"user:alice@example.com\" && context.resource != \"payroll\"",
            "(context.hour >= 9 && context.hour < 17) && context.weekend == false",
            "subject.level > 2 && subject.env in context.envs",
            "true",
            "!(subject.role in [\"a\", \"b\", 1, 2]) && \"x\\\"y\" == \"x\\\\y\"",
        ];
        return policies.Select(Encoding.UTF8.GetBytes);
    }
}
