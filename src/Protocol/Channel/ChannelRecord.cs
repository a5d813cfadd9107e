using System.Buffers.Binary;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// The record inside each transport message: a type byte, then the body.
/// <code>
///  0      1                                  n
///  +------+----------------------------------+
///  | type | body (DATA fragment, CLOSE code, |
///  |      | CREDENTIAL_UPDATE chains, ACK)   |
///  +------+----------------------------------+
/// </code>
/// </summary>
internal enum RecordType : byte
{
    /// <summary>A fragment of an application message; more fragments follow.</summary>
    DataMore = 0x01,

    /// <summary>The last (or only) fragment of an application message; may be empty.</summary>
    DataLast = 0x02,

    /// <summary>The responder accepted the initiator; the first record it sends.</summary>
    Accept = 0x03,

    /// <summary>Nothing; keeps the peer's idle timer fed.</summary>
    Keepalive = 0x04,

    /// <summary>The sender switched its sending key (REKEY) right after this record; the receiver does the same with its receiving key.</summary>
    Rekey = 0x05,

    /// <summary>The channel ends: body is a 2-byte big-endian <see cref="ChannelErrorCode"/> (0 for a graceful close).</summary>
    Close = 0x06,

    /// <summary>
    /// The sender now presents these credential chains instead of the ones it presented before: body is
    /// <see cref="Channel.CredentialUpdate"/>. How a channel outlives the refresh of short-lived credentials.
    /// </summary>
    CredentialUpdate = 0x07,

    /// <summary>
    /// How many application messages the sender has accepted from the receiver so far: body is an 8-byte big-endian
    /// count. Lets the other side tell, when the channel breaks, which of its messages arrived.
    /// </summary>
    Ack = 0x08,
}

/// <summary>Sizes of the channel's framing, derived from the Noise limits.</summary>
internal static class ChannelFraming
{
    /// <summary>Bytes of the record type.</summary>
    public const int RecordHeaderLength = 1;

    /// <summary>Largest DATA fragment: a maximal transport payload less the record header.</summary>
    public const int MaxFragmentLength = NoiseConstants.MaxTransportPayloadLength - RecordHeaderLength;

    /// <summary>Bytes of a CLOSE body.</summary>
    public const int CloseBodyLength = 2;

    /// <summary>Bytes of an ACK body.</summary>
    public const int AckBodyLength = 8;

    /// <summary>
    /// During the handshake, a frame of exactly this many bytes is an abort carrying a reason code: no valid
    /// handshake message is that short (message 1 alone is at least 32 bytes).
    /// </summary>
    public const int AbortFrameLength = 2;

    /// <summary>The prologue: binds the protocol and its version into the handshake hash, so a downgrade or cross-protocol replay fails.</summary>
    public static ReadOnlySpan<byte> Prologue => "securechannels/channel/v1"u8;

    /// <summary>The Noise protocol of every channel.</summary>
    public const string Protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";

    public static int FrameLength(int recordBodyLength) =>
        LengthPrefixedFrame.HeaderLength + RecordHeaderLength + recordBodyLength + NoiseConstants.TagLength;

    public static void WriteCode(Span<byte> destination, ChannelErrorCode code) =>
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)code);

    public static ChannelErrorCode ReadCode(ReadOnlySpan<byte> source) =>
        (ChannelErrorCode)BinaryPrimitives.ReadUInt16BigEndian(source);

    public static void WriteCount(Span<byte> destination, ulong count) =>
        BinaryPrimitives.WriteUInt64BigEndian(destination, count);

    public static ulong ReadCount(ReadOnlySpan<byte> source) =>
        BinaryPrimitives.ReadUInt64BigEndian(source);
}
