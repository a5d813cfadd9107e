using System.Collections.Immutable;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// The body of a CREDENTIAL_UPDATE record (docs/protocol.md §8.3): the full set of credential chains the sender
/// now presents, replacing the set it presented before.
/// </summary>
/// <remarks>
/// Encoding: <c>[version = 1, credentials: [bin, ...]]</c>, each bin an encoded chain exactly as in the
/// handshake payload. Unlike the handshake payload it takes no trailing elements and no padding: a later
/// version of the record gets a new version number, and the record is already inside the encrypted channel,
/// whose observers see only that some record of this size passed.
/// </remarks>
internal static class CredentialUpdate
{
    private const ulong CurrentVersion = 1;
    private const string Structure = "credential update";

    /// <summary>Encodes the chains; nothing is checked about them.</summary>
    public static byte[] Encode(IReadOnlyList<CredentialChain> chains) =>
        Write([.. chains.Select(c => c.Encoded)]);

    /// <summary>Decodes a body of at most <paramref name="maxChains"/> chains, without decoding the chains themselves.</summary>
    /// <exception cref="WireFormatException">The body is malformed, not canonical, trails bytes or exceeds the limits.</exception>
    public static ImmutableArray<byte[]> Decode(ReadOnlyMemory<byte> body, int maxChains) =>
        CanonicalEncoding.Decode(body, Structure, ChannelFraming.MaxFragmentLength, (ref CanonicalReader reader) => Read(ref reader, maxChains), Write);

    private static ImmutableArray<byte[]> Read(ref CanonicalReader reader, int maxChains)
    {
        reader.ReadArray(Structure, 2, 2);
        reader.ReadVersion(CurrentVersion);
        return PresentedCredentials.Read(ref reader, maxChains);
    }

    private static byte[] Write(ImmutableArray<byte[]> chains)
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteUnsigned(CurrentVersion);
        PresentedCredentials.Write(ref writer, chains);
        return writer.ToArray();
    }
}
