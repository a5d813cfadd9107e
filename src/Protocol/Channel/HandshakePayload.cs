using System.Collections.Immutable;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// What a channel handshake message carries inside its Noise payload: the sender's identity history, the
/// attestation binding its Noise static key to that identity, its credential chains, and padding. Message 1
/// carries none of these (it is not encrypted); messages 2 and 3 carry the responder's and initiator's.
/// </summary>
/// <remarks>
/// Encoding: <c>[version = 1, identity: bin | nil, attestation: bin | nil, credentials: [bin, ...], padding: bin]</c>.
/// A reader accepts further trailing elements and skips them, so a later version can add fields that older
/// readers ignore. Padding is zeros and hides the exact size of what is presented.
/// </remarks>
internal sealed record HandshakePayload(byte[]? Identity, byte[]? Attestation, ImmutableArray<byte[]> Credentials)
{
    private const ulong CurrentVersion = 1;

    /// <summary>The payload of message 1: nothing, not even padding (it travels in clear).</summary>
    public static HandshakePayload Empty { get; } = new(null, null, []);

    public byte[] Encode(int paddingBlock)
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(5);
        writer.WriteUnsigned(CurrentVersion);
        WriteOptional(ref writer, Identity);
        WriteOptional(ref writer, Attestation);
        PresentedCredentials.Write(ref writer, Credentials);

        var unpadded = writer.ToArray().Length + 2;
        var padding = paddingBlock <= 1 ? 0 : (paddingBlock - (unpadded % paddingBlock)) % paddingBlock;
        writer.WriteBytes(new byte[padding]);
        return writer.ToArray();
    }

    /// <exception cref="WireFormatException">The payload is malformed or exceeds the limits.</exception>
    public static HandshakePayload Decode(ReadOnlyMemory<byte> encoded, int maxCredentials)
    {
        var reader = new CanonicalReader(encoded, "handshake payload");
        var count = reader.ReadArray("handshake payload", 5, 64);
        var version = reader.ReadUnsigned("version");
        if (version != CurrentVersion)
        {
            throw new WireFormatException(WireErrorKind.UnsupportedVersion, $"handshake payload: version {version} is not supported.");
        }

        var identity = ReadOptional(ref reader, "identity");
        var attestation = ReadOptional(ref reader, "attestation");
        var credentials = PresentedCredentials.Read(ref reader, maxCredentials);
        reader.ReadBytes("padding", 0, ushort.MaxValue);
        for (var i = 5; i < count; i++)
        {
            reader.ReadRawValue("extension");
        }

        reader.EnsureEnd();
        return new HandshakePayload(identity, attestation, credentials);
    }

    private static void WriteOptional(ref CanonicalWriter writer, byte[]? value)
    {
        if (value is null)
        {
            writer.WriteNil();
        }
        else
        {
            writer.WriteBytes(value);
        }
    }

    private static byte[]? ReadOptional(ref CanonicalReader reader, string field) =>
        reader.ReadBytesOrNilOfLength(field, 1, ushort.MaxValue);
}
