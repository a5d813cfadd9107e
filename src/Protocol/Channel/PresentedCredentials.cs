using System.Collections.Immutable;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// The credential chains one side presents to the other: how they travel (the <c>credentials</c> array of the
/// handshake payload and of a CREDENTIAL_UPDATE record, docs/protocol.md §8.2 and §8.3) and how the receiver
/// verifies them. Both places share this code so a chain is accepted mid-channel exactly when it would be
/// accepted in a handshake.
/// </summary>
internal static class PresentedCredentials
{
    /// <summary>Largest encoded chain in the array: the bound the handshake has always applied.</summary>
    private const int MaxEncodedChainLength = ushort.MaxValue;

    /// <summary>Writes <c>credentials: [bin, ...]</c>, each bin an encoded <see cref="CredentialChain"/>.</summary>
    public static void Write(ref CanonicalWriter writer, IReadOnlyList<byte[]> chains)
    {
        writer.WriteArray(chains.Count);
        foreach (var chain in chains)
        {
            writer.WriteBytes(chain);
        }
    }

    /// <summary>Reads <c>credentials: [bin, ...]</c> of at most <paramref name="maxChains"/> chains, without decoding them.</summary>
    /// <exception cref="WireFormatException">The array is malformed or exceeds the limits.</exception>
    public static ImmutableArray<byte[]> Read(ref CanonicalReader reader, int maxChains)
    {
        var count = reader.ReadArray("credentials", 0, maxChains);
        var chains = ImmutableArray.CreateBuilder<byte[]>(count);
        for (var i = 0; i < count; i++)
        {
            chains.Add(reader.ReadBytes("credential chain", 1, MaxEncodedChainLength));
        }

        return chains.MoveToImmutable();
    }

    /// <summary>
    /// Decodes and verifies every chain with <paramref name="presenter"/> as its presenter, and requires them all
    /// to act for one principal.
    /// </summary>
    /// <param name="encoded">The chains as presented.</param>
    /// <param name="presenter">The peer's verified identity.</param>
    /// <param name="verifier">This side's verifier.</param>
    /// <param name="memory">Where chains that verify are remembered: the verifier's cache when null.</param>
    /// <exception cref="SecureChannelException">A chain does not decode or hold (<see cref="ErrorCode"/> of why), or the chains name different principals (<see cref="ChannelErrorCode.AccessDenied"/>).</exception>
    public static (ImmutableArray<CredentialChain> Chains, ImmutableArray<VerifiedCredential> Verified) Verify(IReadOnlyList<byte[]> encoded, Identifier presenter, CredentialVerifier verifier, IVerificationMemory? memory = null)
    {
        memory ??= verifier.Cache;
        var chains = ImmutableArray.CreateBuilder<CredentialChain>(encoded.Count);
        var verified = ImmutableArray.CreateBuilder<VerifiedCredential>(encoded.Count);
        try
        {
            foreach (var bytes in encoded)
            {
                var chain = CredentialChain.Decode(bytes);
                verified.Add(verifier.Verify(chain, presenter, memory));
                chains.Add(chain);
            }
        }
        catch (CredentialException e)
        {
            throw new SecureChannelException(ErrorCode(e.Kind), $"A credential of {presenter} does not hold: {e.Kind}{(e.Widening == WideningKind.None ? string.Empty : $" ({e.Widening})")}: {e.Message}", e);
        }

        if (verified.Select(v => v.Principal).Distinct().Count() > 1)
        {
            throw new SecureChannelException(ChannelErrorCode.AccessDenied, $"The credentials of {presenter} act for different principals.");
        }

        return (chains.MoveToImmutable(), verified.MoveToImmutable());
    }

    /// <summary>
    /// The code on the wire when a credential fails: expiry and revocation are worth telling apart (the peer can
    /// refresh or give up), everything else is a plain refusal.
    /// </summary>
    public static ChannelErrorCode ErrorCode(CredentialErrorKind kind) => kind switch
    {
        CredentialErrorKind.Expired => ChannelErrorCode.CredentialExpired,
        CredentialErrorKind.Revoked => ChannelErrorCode.CredentialRevoked,
        _ => ChannelErrorCode.AccessDenied,
    };
}
