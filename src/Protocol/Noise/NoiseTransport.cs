using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Noise;

/// <summary>
/// The transport phase of a completed handshake (spec §5.1, §11): ordered messages, each under the next
/// nonce. Messages must arrive exactly once and in order; for lossy or reordering carriers use
/// <see cref="StatelessNoiseTransport"/>. Not thread-safe, except that one thread may write while another
/// reads: the two directions share nothing.
/// </summary>
public sealed class NoiseTransport : IDisposable
{
    private readonly CipherState? _sending;
    private readonly CipherState? _receiving;
    private readonly byte[] _handshakeHash;
    private readonly byte[]? _remoteStatic;
    private bool _disposed;

    internal NoiseTransport(NoiseProtocol protocol, bool isInitiator, CipherState? sending, CipherState? receiving, ReadOnlySpan<byte> handshakeHash, byte[]? remoteStatic)
    {
        Protocol = protocol;
        IsInitiator = isInitiator;
        _sending = sending;
        _receiving = receiving;
        _handshakeHash = handshakeHash.ToArray();
        _remoteStatic = remoteStatic;
    }

    /// <summary>The protocol the handshake ran.</summary>
    public NoiseProtocol Protocol { get; }

    /// <summary>True on the initiator's side.</summary>
    public bool IsInitiator { get; }

    /// <summary>The final handshake hash: a value both sides share and nobody else can know, for channel binding (spec §11.2).</summary>
    public ReadOnlySpan<byte> HandshakeHash => _handshakeHash;

    /// <summary>The peer's static public key; empty when the pattern never revealed it.</summary>
    public ReadOnlySpan<byte> RemoteStaticPublicKey => _remoteStatic;

    /// <summary>The nonce of the next message written (the count of messages written since the last handshake).</summary>
    public ulong SendingNonce => _sending?.Nonce ?? 0;

    /// <summary>The nonce expected on the next message read.</summary>
    public ulong ReceivingNonce => _receiving?.Nonce ?? 0;

    /// <summary>Encrypts <paramref name="payload"/> into <paramref name="message"/>; returns <c>payload.Length + 16</c>.</summary>
    /// <param name="payload">At most <see cref="NoiseConstants.MaxTransportPayloadLength"/> bytes.</param>
    /// <param name="message">Where the message goes; may be the very same memory as <paramref name="payload"/>, but must not otherwise overlap it.</param>
    /// <exception cref="NoiseException">
    /// <see cref="NoiseErrorKind.MessageTooLarge"/>, <see cref="NoiseErrorKind.BufferTooSmall"/>,
    /// <see cref="NoiseErrorKind.NonceExhausted"/>, or <see cref="NoiseErrorKind.WrongState"/> for the responder of a one-way pattern.
    /// </exception>
    public int Write(ReadOnlySpan<byte> payload, Span<byte> message)
    {
        var cipher = Direction(_sending, "The responder of a one-way pattern cannot send.");
        CheckOutgoing(payload, message);
        return cipher.EncryptWithAd(default, payload, message);
    }

    /// <summary>Decrypts <paramref name="message"/> into <paramref name="payload"/>; returns <c>message.Length - 16</c>.</summary>
    /// <param name="message">The message as received.</param>
    /// <param name="payload">Where the payload goes; may be the very same memory as <paramref name="message"/>, but must not otherwise overlap it.</param>
    /// <exception cref="NoiseException">
    /// <see cref="NoiseErrorKind.MessageTooLarge"/>, <see cref="NoiseErrorKind.MessageTooShort"/>, <see cref="NoiseErrorKind.BufferTooSmall"/>,
    /// <see cref="NoiseErrorKind.DecryptFailed"/> (the nonce does not advance, so the next genuine message still reads),
    /// <see cref="NoiseErrorKind.NonceExhausted"/>, or <see cref="NoiseErrorKind.WrongState"/> for the initiator of a one-way pattern.
    /// </exception>
    public int Read(ReadOnlySpan<byte> message, Span<byte> payload) =>
        TryRead(message, payload, out var written)
            ? written
            : throw new NoiseException(NoiseErrorKind.DecryptFailed, "The message failed authentication.");

    /// <summary>
    /// As <see cref="Read"/>, but an authentication failure returns false instead of throwing, so a stream of
    /// forged messages costs no exception each. Other errors still throw.
    /// </summary>
    public bool TryRead(ReadOnlySpan<byte> message, Span<byte> payload, out int written)
    {
        var cipher = Direction(_receiving, "The initiator of a one-way pattern cannot receive.");
        CheckIncoming(message, payload);
        return cipher.TryDecryptWithAd(default, message, payload, out written);
    }

    /// <summary>Replaces the sending key with REKEY(k) (spec §11.3). The peer must call <see cref="RekeyReceiving"/> at the same point.</summary>
    public void RekeySending() => Direction(_sending, "The responder of a one-way pattern has no sending key.").Rekey();

    /// <summary>Replaces the receiving key with REKEY(k) (spec §11.3).</summary>
    public void RekeyReceiving() => Direction(_receiving, "The initiator of a one-way pattern has no receiving key.").Rekey();

    /// <summary>Destroys both transport keys.</summary>
    public void Dispose()
    {
        _disposed = true;
        _sending?.Dispose();
        _receiving?.Dispose();
    }

    internal static void CheckOutgoing(ReadOnlySpan<byte> payload, Span<byte> message)
    {
        if (payload.Length > NoiseConstants.MaxTransportPayloadLength)
        {
            throw new NoiseException(NoiseErrorKind.MessageTooLarge, $"A transport payload of {payload.Length} bytes exceeds the {NoiseConstants.MaxTransportPayloadLength}-byte limit.");
        }

        if (message.Length < payload.Length + NoiseConstants.TagLength)
        {
            throw new NoiseException(NoiseErrorKind.BufferTooSmall, $"The message buffer holds {message.Length} bytes; {payload.Length + NoiseConstants.TagLength} are needed.");
        }

        CheckOverlap(payload, message);
    }

    internal static void CheckIncoming(ReadOnlySpan<byte> message, Span<byte> payload)
    {
        var messageLength = message.Length;
        var payloadCapacity = payload.Length;
        if (messageLength > NoiseConstants.MaxMessageLength)
        {
            throw new NoiseException(NoiseErrorKind.MessageTooLarge, $"A transport message of {messageLength} bytes exceeds the {NoiseConstants.MaxMessageLength}-byte limit.");
        }

        if (messageLength < NoiseConstants.TagLength)
        {
            throw new NoiseException(NoiseErrorKind.MessageTooShort, $"A transport message has at least {NoiseConstants.TagLength} bytes; this one has {messageLength}.");
        }

        if (payloadCapacity < messageLength - NoiseConstants.TagLength)
        {
            throw new NoiseException(NoiseErrorKind.BufferTooSmall, $"The payload buffer holds {payloadCapacity} bytes; {messageLength - NoiseConstants.TagLength} are needed.");
        }

        CheckOverlap(message, payload);
    }

    // In-place is fine (the AEADs read each block before writing it); a shifted overlap is not, and one
    // backend would silently produce wrong bytes, so it is refused everywhere.
    private static void CheckOverlap(ReadOnlySpan<byte> input, ReadOnlySpan<byte> output)
    {
        if (input.Overlaps(output, out var offset) && offset != 0)
        {
            throw new ArgumentException("The input and output buffers may be the same memory but must not otherwise overlap.", nameof(output));
        }
    }

    private CipherState Direction(CipherState? state, string oneWayMessage)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return state ?? throw new NoiseException(NoiseErrorKind.WrongState, oneWayMessage);
    }
}
