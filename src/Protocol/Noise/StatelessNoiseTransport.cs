using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Noise;

/// <summary>
/// The transport phase for carriers that lose or reorder messages (datagrams, several paths): the caller
/// names each message's nonce, which travels beside the message, and a <see cref="ReplayWindow"/> refuses a
/// nonce that was already accepted or fell out of the window. Sending nonces must rise: a nonce at or below
/// one already used is refused, because reusing a nonce under the same key breaks both AEADs.
/// Not thread-safe; one thread may write while another reads.
/// </summary>
public sealed class StatelessNoiseTransport : IDisposable
{
    /// <summary>Length of the nonce prefix that <see cref="WriteNext"/> and <see cref="ReadWithNonce"/> put before the message.</summary>
    public const int NonceLength = sizeof(ulong);

    private readonly CipherState? _sending;
    private readonly CipherState? _receiving;
    private readonly ReplayWindow _window = new();
    private ulong _nextSendingNonce;
    private readonly byte[] _handshakeHash;
    private readonly byte[]? _remoteStatic;
    private bool _disposed;

    internal StatelessNoiseTransport(NoiseProtocol protocol, bool isInitiator, CipherState? sending, CipherState? receiving, ReadOnlySpan<byte> handshakeHash, byte[]? remoteStatic)
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

    /// <summary>The final handshake hash, for channel binding.</summary>
    public ReadOnlySpan<byte> HandshakeHash => _handshakeHash;

    /// <summary>The peer's static public key; empty when the pattern never revealed it.</summary>
    public ReadOnlySpan<byte> RemoteStaticPublicKey => _remoteStatic;

    /// <summary>The lowest nonce the next <see cref="Write"/> may use; <see cref="WriteNext"/> uses exactly this.</summary>
    public ulong NextSendingNonce => _nextSendingNonce;

    /// <summary>Encrypts under the explicit <paramref name="nonce"/>; returns <c>payload.Length + 16</c>.</summary>
    /// <exception cref="NoiseException">
    /// <see cref="NoiseErrorKind.NonceReused"/> when <paramref name="nonce"/> is below <see cref="NextSendingNonce"/>;
    /// <see cref="NoiseErrorKind.NonceExhausted"/> for the reserved nonce 2^64-1; otherwise as <see cref="NoiseTransport.Write"/>.
    /// </exception>
    public int Write(ulong nonce, ReadOnlySpan<byte> payload, Span<byte> message)
    {
        var cipher = Direction(_sending, "The responder of a one-way pattern cannot send.");
        NoiseTransport.CheckOutgoing(payload, message);
        if (nonce < _nextSendingNonce)
        {
            throw new NoiseException(NoiseErrorKind.NonceReused, "Sending nonces must rise; this one is at or below a nonce already used.");
        }

        cipher.SetNonce(nonce);
        var written = cipher.EncryptWithAd(default, payload, message);
        _nextSendingNonce = nonce + 1;
        return written;
    }

    /// <summary>
    /// Decrypts a message sent under <paramref name="nonce"/>; returns <c>message.Length - 16</c>. The nonce is
    /// marked as seen only after the message authenticated.
    /// </summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.Replayed"/> for a nonce seen before or too old; otherwise as <see cref="NoiseTransport.Read"/>.</exception>
    public int Read(ulong nonce, ReadOnlySpan<byte> message, Span<byte> payload) =>
        TryRead(nonce, message, payload, out var written)
            ? written
            : throw new NoiseException(NoiseErrorKind.DecryptFailed, "The message failed authentication.");

    /// <summary>As <see cref="Read"/>, but an authentication failure returns false instead of throwing.</summary>
    public bool TryRead(ulong nonce, ReadOnlySpan<byte> message, Span<byte> payload, out int written)
    {
        var cipher = Direction(_receiving, "The initiator of a one-way pattern cannot receive.");
        NoiseTransport.CheckIncoming(message, payload);
        if (!_window.CanAccept(nonce))
        {
            throw new NoiseException(NoiseErrorKind.Replayed, "The message's nonce was already accepted or is older than the replay window.");
        }

        cipher.SetNonce(nonce);
        if (!cipher.TryDecryptWithAd(default, message, payload, out written))
        {
            return false;
        }

        _window.Accept(nonce);
        return true;
    }

    /// <summary>
    /// Writes an 8-byte big-endian nonce and then the message under that nonce, counting nonces itself;
    /// returns the bytes written (<c>8 + payload.Length + 16</c>).
    /// </summary>
    public int WriteNext(ReadOnlySpan<byte> payload, Span<byte> output)
    {
        Direction(_sending, "The responder of a one-way pattern cannot send.");
        if (output.Length < NonceLength)
        {
            throw new NoiseException(NoiseErrorKind.BufferTooSmall, "The output cannot hold the nonce.");
        }

        var nonce = _nextSendingNonce;
        var written = Write(nonce, payload, output[NonceLength..]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(output, nonce);
        return NonceLength + written;
    }

    /// <summary>Reads what <see cref="WriteNext"/> wrote: the nonce prefix, then the message.</summary>
    public int ReadWithNonce(ReadOnlySpan<byte> input, Span<byte> payload)
    {
        if (input.Length < NonceLength)
        {
            throw new NoiseException(NoiseErrorKind.MessageTooShort, "The input is shorter than its nonce prefix.");
        }

        return Read(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(input), input[NonceLength..], payload);
    }

    /// <summary>Destroys both transport keys.</summary>
    public void Dispose()
    {
        _disposed = true;
        _sending?.Dispose();
        _receiving?.Dispose();
    }

    private CipherState Direction(CipherState? state, string oneWayMessage)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return state ?? throw new NoiseException(NoiseErrorKind.WrongState, oneWayMessage);
    }
}
