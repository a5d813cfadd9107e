using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Delegation chains. First byte 0: <see cref="CredentialChain.Decode"/> and <c>CredentialVerifier.Verify</c>
/// against the fixed authority, presented by the leaf's subject; 1: the same with registered delegations required.
/// 2 (signed): the rest is an unsigned <see cref="Credential"/>, signed by the cast member it names as issuer (the
/// authority for a stranger); a root one is the whole chain, a delegated one is appended below alice's root credential,
/// so the verifier's expiry, narrowing, depth, parent and revocation rules see arbitrary fields behind valid signatures.
/// Expected: <see cref="CredentialException"/>; <see cref="WireFormatException"/> from decoding the unsigned body.
/// </summary>
public sealed class CredentialChainTarget : IFuzzTarget
{
    public string Name => "credential-chain";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var mode = input[0] % 3;
        try
        {
            var chain = mode == 2 ? Signed(input[1..]) : CredentialChain.Decode(input[1..].ToArray());
            var verified = FuzzWorld.NewVerifier(requireRegistered: mode == 1).Verify(chain, chain.Leaf.Credential.Subject);
            if (verified.Subject != chain.Leaf.Credential.Subject || verified.ChainLength != chain.Credentials.Length)
            {
                throw new FuzzInvariantException("A verified chain names a different subject or length than it has.");
            }

            if (verified.NotBefore > verified.NotAfter)
            {
                throw new FuzzInvariantException("A verified chain's validity period is empty.");
            }
        }
        catch (CredentialException)
        {
        }
        catch (WireFormatException) when (mode == 2)
        {
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        var receipt = SignedDelegationReceipt.SignAsync(FuzzWorld.Authority, FuzzWorld.BobChain.Leaf, FuzzWorld.Now).GetAwaiter().GetResult();
        yield return [0, .. FuzzWorld.AliceChain.Encoded];
        yield return [0, .. FuzzWorld.BobChain.Encoded];
        yield return [1, .. FuzzWorld.BobChain.WithRegistration(receipt).Encoded];
        yield return [2, .. FuzzWorld.AliceChain.Leaf.Credential.Encoded];
        yield return [2, .. FuzzWorld.BobChain.Leaf.Credential.Encoded];
    }

    private static CredentialChain Signed(ReadOnlySpan<byte> body)
    {
        var credential = Credential.Decode(body.ToArray());
        var issuer = FuzzWorld.Find(credential.Issuer) ?? FuzzWorld.Authority;
        var signed = FuzzWorld.Sign(issuer, credential);
        return credential.Parent is null
            ? new CredentialChain([signed], [])
            : new CredentialChain([FuzzWorld.AliceChain.Leaf, signed], [issuer.History]);
    }
}
