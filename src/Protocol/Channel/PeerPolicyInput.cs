using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// The names a policy sees for a verified peer (docs/protocol.md §7): <c>peer.identifier</c>,
/// <c>peer.principal</c>, <c>peer.chain_length</c>, <c>subject.NAME</c> per attribute (a string when it has
/// one value, a set when it has several) and <c>context.NAME</c> from the application.
/// </summary>
public static class PeerPolicyInput
{
    /// <summary>Builds the input for a peer described by its parts (the CLI uses this without a channel).</summary>
    public static PolicyInput Create(Identifier identifier, Principal principal, int chainLength, AttributeSet attributes, IReadOnlyDictionary<string, PolicyValue>? context = null)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        var input = new PolicyInput()
            .Set("peer.identifier", identifier.ToString())
            .Set("peer.principal", principal.ToString())
            .Set("peer.chain_length", chainLength);
        foreach (var (name, values) in attributes.Entries)
        {
            if (values.Count == 1)
            {
                input.Set("subject." + name, values.Min!);
            }
            else
            {
                input.Set("subject." + name, values);
            }
        }

        foreach (var (name, value) in context ?? new Dictionary<string, PolicyValue>())
        {
            input.Set("context." + name, value);
        }

        return input;
    }

    /// <summary>Builds the input for a verified channel peer.</summary>
    public static PolicyInput Create(VerifiedPeer peer, IReadOnlyDictionary<string, PolicyValue>? context = null)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return Create(peer.Identifier, peer.Principal, peer.ChainLength, peer.Attributes, context);
    }
}
