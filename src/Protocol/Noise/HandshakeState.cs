using System.Security.Cryptography;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Noise;

/// <summary>
/// One side of a Noise handshake (spec §5.3): it writes and reads handshake messages in the pattern's order
/// and, once the last one is processed, hands over to a <see cref="NoiseTransport"/> through
/// <see cref="ToTransport"/>, which consumes it. Build one with <see cref="NoiseBuilder"/>.
/// </summary>
/// <remarks>
/// Any error while a message is processed aborts the handshake: every later call fails with
/// <see cref="NoiseErrorKind.WrongState"/>. The only exceptions are a caller buffer that is too small and a
/// payload that would make the message too large: those are detected before anything changes.
/// Not thread-safe: one handshake belongs to one logical flow.
/// </remarks>
public sealed class HandshakeState : IDisposable
{
    private readonly HandshakePattern _pattern;
    private readonly SymmetricState _symmetric;
    private readonly byte[][] _psks;
    private readonly byte[]? _fixedEphemeral;
    private readonly bool _ownsStatic;
    private DhKeyPair? _s;
    private DhKeyPair? _e;
    private byte[]? _rs;
    private byte[]? _re;
    private int _messageIndex;
    private int _pskIndex;
    private bool _failed;
    private bool _disposed;
    private CipherState? _sending;
    private CipherState? _receiving;

    internal HandshakeState(
        NoiseProtocol protocol,
        bool isInitiator,
        ReadOnlySpan<byte> prologue,
        DhKeyPair? localStatic,
        bool ownsStatic,
        DhKeyPair? localEphemeral,
        byte[]? remoteStatic,
        byte[]? remoteEphemeral,
        byte[][] psks,
        byte[]? fixedEphemeral)
    {
        Protocol = protocol;
        IsInitiator = isInitiator;
        _pattern = protocol.Pattern;
        _symmetric = new SymmetricState(protocol);
        _s = localStatic;
        _ownsStatic = ownsStatic;
        _e = localEphemeral;
        _rs = remoteStatic;
        _re = remoteEphemeral;
        _psks = psks;
        _fixedEphemeral = fixedEphemeral;

        var initialized = false;
        try
        {
            _symmetric.MixHash(prologue);

            // Pre-messages are hashed initiator's first, whichever side we are (spec §5.3, Initialize).
            MixPreMessage(_pattern.InitiatorPreMessage, local: isInitiator);
            MixPreMessage(_pattern.ResponderPreMessage, local: !isInitiator);
            initialized = true;
        }
        finally
        {
            if (!initialized)
            {
                Dispose();
            }
        }
    }

    /// <summary>The protocol this handshake runs.</summary>
    public NoiseProtocol Protocol { get; }

    /// <summary>
    /// True for the initiator role: the side whose messages are <c>-&gt;</c> in the pattern, and whose keys the
    /// tokens name first (<c>es</c> is the initiator's e with the responder's s). In a Bob-initiated (fallback)
    /// pattern the responder sends the first message; the roles do not change.
    /// </summary>
    public bool IsInitiator { get; }

    /// <summary>True when the next call must be <see cref="WriteMessage"/>; false when it must be <see cref="ReadMessage"/> or the handshake is over.</summary>
    public bool IsMyTurn => !IsCompleted && !_failed && !_disposed && _pattern.Messages[_messageIndex].FromInitiator == IsInitiator;

    /// <summary>True once the last handshake message was written or read.</summary>
    public bool IsCompleted => _messageIndex == _pattern.Messages.Length;

    /// <summary>
    /// The handshake hash h (HASHLEN bytes). Once the handshake is complete it is the channel-binding value of
    /// spec §11.2; before that it changes with each message.
    /// </summary>
    public ReadOnlySpan<byte> HandshakeHash => _symmetric.HandshakeHash;

    /// <summary>The peer's static public key, once known (pre-message or received); empty before that.</summary>
    public ReadOnlySpan<byte> RemoteStaticPublicKey => _rs;

    /// <summary>The peer's ephemeral public key, once received; empty before that. Fallback (spec §10.2) starts from it.</summary>
    internal byte[]? RemoteEphemeralPublicKey => _re;

    /// <summary>The local ephemeral key pair, once generated. Fallback (spec §10.2) re-uses it.</summary>
    internal DhKeyPair? LocalEphemeral => _e;


    /// <summary>The length of the next message this side writes when its payload has <paramref name="payloadLength"/> bytes.</summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.WrongState"/> when it is not this side's turn to write.</exception>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.MessageTooLarge"/> when the payload alone exceeds the message limit.</exception>
    public int GetMessageLength(int payloadLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        EnsureTurn(write: true);
        if (payloadLength > NoiseConstants.MaxMessageLength)
        {
            throw new NoiseException(NoiseErrorKind.MessageTooLarge, $"A payload of {payloadLength} bytes exceeds the {NoiseConstants.MaxMessageLength}-byte message limit.");
        }

        GetMaxPayloadLength(out var overhead);
        return overhead + payloadLength;
    }

    /// <summary>The largest payload the next message this side writes can carry within the 65535-byte limit.</summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.WrongState"/> when it is not this side's turn to write.</exception>
    public int GetMaxPayloadLength()
    {
        EnsureTurn(write: true);
        return GetMaxPayloadLength(out _);
    }

    /// <summary>WriteMessage(payload, message_buffer) of spec §5.3: writes the next handshake message.</summary>
    /// <param name="payload">The payload; it is encrypted once the pattern has produced a key.</param>
    /// <param name="message">Where the message goes; must not overlap <paramref name="payload"/>.</param>
    /// <returns>The number of bytes written to <paramref name="message"/>.</returns>
    /// <exception cref="NoiseException">
    /// <see cref="NoiseErrorKind.WrongState"/> when it is not this side's turn, or the handshake is over or aborted;
    /// <see cref="NoiseErrorKind.MessageTooLarge"/> when the message would exceed 65535 bytes;
    /// <see cref="NoiseErrorKind.BufferTooSmall"/> when <paramref name="message"/> cannot hold it (see <see cref="GetMessageLength"/>);
    /// <see cref="NoiseErrorKind.NonceExhausted"/> or <see cref="NoiseErrorKind.InvalidKey"/> from the primitives.
    /// </exception>
    public int WriteMessage(ReadOnlySpan<byte> payload, Span<byte> message)
    {
        // Tokens are written before the payload is read, so any overlap would send corrupted bytes.
        if (payload.Overlaps(message))
        {
            throw new ArgumentException("The payload and message buffers must not overlap.", nameof(message));
        }

        var length = GetMessageLength(payload.Length);
        if (length > NoiseConstants.MaxMessageLength)
        {
            throw new NoiseException(NoiseErrorKind.MessageTooLarge, $"The handshake message would be {length} bytes; the limit is {NoiseConstants.MaxMessageLength}.");
        }

        if (message.Length < length)
        {
            throw new NoiseException(NoiseErrorKind.BufferTooSmall, $"The message buffer holds {message.Length} bytes; {length} are needed.");
        }

        var done = false;
        try
        {
            var offset = 0;
            foreach (var token in _pattern.Messages[_messageIndex].Tokens)
            {
                switch (token)
                {
                    case NoiseToken.E:
                        _e?.Dispose();
                        _e = _fixedEphemeral is null ? Protocol.Dh.GenerateKeyPair() : Protocol.Dh.ImportPrivateKey(_fixedEphemeral);
                        _e.PublicKey.CopyTo(message[offset..]);
                        MixEphemeral(_e.PublicKey);
                        offset += Protocol.Dh.DhLength;
                        break;
                    case NoiseToken.S:
                        offset += _symmetric.EncryptAndHash(Required(_s, "local static key").PublicKey, message[offset..]);
                        break;
                    case NoiseToken.Psk:
                        _symmetric.MixKeyAndHash(_psks[_pskIndex++]);
                        break;
                    default:
                        MixDh(token);
                        break;
                }
            }

            offset += _symmetric.EncryptAndHash(payload, message[offset..]);
            Advance();
            done = true;
            return offset;
        }
        finally
        {
            if (!done)
            {
                Abort();
            }
        }
    }

    /// <summary>ReadMessage(message, payload_buffer) of spec §5.3: reads the next handshake message.</summary>
    /// <param name="message">The message as received.</param>
    /// <param name="payload">Where the payload goes; must not overlap <paramref name="message"/>.</param>
    /// <returns>The number of payload bytes written.</returns>
    /// <exception cref="NoiseException">
    /// <see cref="NoiseErrorKind.WrongState"/> when it is not this side's turn to read, or the handshake is over or aborted;
    /// <see cref="NoiseErrorKind.MessageTooLarge"/> over 65535 bytes; <see cref="NoiseErrorKind.MessageTooShort"/> when
    /// the message cannot hold the pattern's tokens; <see cref="NoiseErrorKind.BufferTooSmall"/> when the payload does
    /// not fit; <see cref="NoiseErrorKind.DecryptFailed"/> when authentication fails; <see cref="NoiseErrorKind.InvalidKey"/>
    /// for a low-order public key.
    /// </exception>
    public int ReadMessage(ReadOnlySpan<byte> message, Span<byte> payload)
    {
        if (message.Overlaps(payload))
        {
            throw new ArgumentException("The message and payload buffers must not overlap.", nameof(payload));
        }

        EnsureTurn(write: false);
        if (message.Length > NoiseConstants.MaxMessageLength)
        {
            throw new NoiseException(NoiseErrorKind.MessageTooLarge, $"A handshake message of {message.Length} bytes exceeds the {NoiseConstants.MaxMessageLength}-byte limit.");
        }

        var overhead = Overhead(_pattern.Messages[_messageIndex], out var payloadEncrypted);
        var minimum = overhead + (payloadEncrypted ? NoiseConstants.TagLength : 0);
        if (message.Length >= minimum && payload.Length < message.Length - minimum)
        {
            throw new NoiseException(NoiseErrorKind.BufferTooSmall, $"The payload buffer holds {payload.Length} bytes; {message.Length - minimum} are needed.");
        }

        var done = false;
        try
        {
            if (message.Length < minimum)
            {
                throw new NoiseException(NoiseErrorKind.MessageTooShort, $"The handshake message has {message.Length} bytes; its pattern needs at least {minimum}.");
            }

            var dhLength = Protocol.Dh.DhLength;
            Span<byte> remoteStatic = stackalloc byte[dhLength];
            var offset = 0;
            foreach (var token in _pattern.Messages[_messageIndex].Tokens)
            {
                switch (token)
                {
                    case NoiseToken.E:
                        _re = message.Slice(offset, dhLength).ToArray();
                        MixEphemeral(_re);
                        offset += dhLength;
                        break;
                    case NoiseToken.S:
                        var length = dhLength + (_symmetric.Cipher.HasKey ? NoiseConstants.TagLength : 0);
                        _symmetric.DecryptAndHash(message.Slice(offset, length), remoteStatic);
                        _rs = remoteStatic.ToArray();
                        offset += length;
                        break;
                    case NoiseToken.Psk:
                        _symmetric.MixKeyAndHash(_psks[_pskIndex++]);
                        break;
                    default:
                        MixDh(token);
                        break;
                }
            }

            var written = _symmetric.DecryptAndHash(message[offset..], payload);
            Advance();
            done = true;
            return written;
        }
        finally
        {
            if (!done)
            {
                Abort();
            }
        }
    }

    /// <summary>
    /// Ends the handshake and returns the transport (spec §5.3, Split). This state is consumed: its handshake
    /// secrets are destroyed and every later call fails.
    /// </summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.WrongState"/> before the handshake is complete.</exception>
    public NoiseTransport ToTransport()
    {
        var (sending, receiving) = TakeCipherStates();
        return new NoiseTransport(Protocol, IsInitiator, sending, receiving, _symmetric.HandshakeHash, _rs);
    }

    /// <summary>
    /// Like <see cref="ToTransport"/>, for transports that lose or reorder messages: the nonce travels with each
    /// message and a replay window guards the receiving side.
    /// </summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.WrongState"/> before the handshake is complete.</exception>
    public StatelessNoiseTransport ToStatelessTransport()
    {
        var (sending, receiving) = TakeCipherStates();
        return new StatelessNoiseTransport(Protocol, IsInitiator, sending, receiving, _symmetric.HandshakeHash, _rs);
    }

    /// <summary>Destroys every secret the handshake holds.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _symmetric.Dispose();
        if (_ownsStatic)
        {
            _s?.Dispose();
        }

        _s = null;
        _e?.Dispose();
        _e = null;
        WipePsks();
        if (_fixedEphemeral is not null)
        {
            CryptographicOperations.ZeroMemory(_fixedEphemeral);
        }

        _sending?.Dispose();
        _receiving?.Dispose();
    }

    /// <summary>Hands the local static and ephemeral keys to a fallback handshake, which then owns them.</summary>
    internal (DhKeyPair? Static, bool OwnsStatic, DhKeyPair? Ephemeral) ReleaseKeysForFallback()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var keys = (_s, _ownsStatic, _e);
        _s = null;
        _e = null;
        return keys;
    }

    private (CipherState? Sending, CipherState? Receiving) TakeCipherStates()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!IsCompleted || _failed)
        {
            throw new NoiseException(NoiseErrorKind.WrongState, "The handshake is not complete.");
        }

        var states = (_sending, _receiving);
        _sending = null;
        _receiving = null;
        Dispose();
        return states;
    }

    private void MixPreMessage(IEnumerable<NoiseToken> tokens, bool local)
    {
        foreach (var token in tokens)
        {
            ReadOnlySpan<byte> key = (token, local) switch
            {
                (NoiseToken.S, true) => Required(_s, "local static key").PublicKey,
                (NoiseToken.S, false) => Required(_rs, "remote static key"),
                (NoiseToken.E, true) => Required(_e, "local ephemeral key").PublicKey,
                _ => Required(_re, "remote ephemeral key"),
            };
            if (token == NoiseToken.E)
            {
                MixEphemeral(key);
            }
            else
            {
                _symmetric.MixHash(key);
            }
        }
    }

    // In a PSK handshake the ephemeral key also feeds the key, so the psk-derived key is never used with a
    // nonce under an attacker-chosen ephemeral without it (spec §9.2).
    private void MixEphemeral(ReadOnlySpan<byte> publicKey)
    {
        _symmetric.MixHash(publicKey);
        if (_pattern.PskCount > 0)
        {
            _symmetric.MixKey(publicKey);
        }
    }

    private void MixDh(NoiseToken token)
    {
        // Token names are from the initiator's point of view: "es" is the initiator's e with the responder's s.
        var (local, remote) = (token, IsInitiator) switch
        {
            (NoiseToken.EE, _) => (_e, _re),
            (NoiseToken.ES, true) => (_e, _rs),
            (NoiseToken.ES, false) => (_s, _re),
            (NoiseToken.SE, true) => (_s, _re),
            (NoiseToken.SE, false) => (_e, _rs),
            _ => (_s, _rs),
        };
        Span<byte> shared = stackalloc byte[Protocol.Dh.DhLength];
        try
        {
            Protocol.Dh.Agree(Required(local, "local key"), Required(remote, "remote key"), shared);
            _symmetric.MixKey(shared);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
        }
    }

    private void Advance()
    {
        _messageIndex++;
        if (!IsCompleted)
        {
            return;
        }

        // Split's first cipher state protects what the side that sent the first handshake message sends:
        // the initiator normally, the responder of a Bob-initiated (fallback) pattern (spec §7.2, §10.2).
        var (firstSenders, otherSide) = _symmetric.Split();
        var sentFirst = _pattern.Messages[0].FromInitiator == IsInitiator;
        if (_pattern.IsOneWay)
        {
            // One-way patterns never use the second cipher state (spec §7.4): drop it now.
            otherSide.Dispose();
            (_sending, _receiving) = sentFirst ? (firstSenders, (CipherState?)null) : (null, firstSenders);
        }
        else
        {
            (_sending, _receiving) = sentFirst ? (firstSenders, otherSide) : (otherSide, firstSenders);
        }
    }

    private int GetMaxPayloadLength(out int overhead)
    {
        overhead = Overhead(_pattern.Messages[_messageIndex], out var payloadEncrypted) + (payloadEncrypted ? NoiseConstants.TagLength : 0);
        return NoiseConstants.MaxMessageLength - overhead;
    }

    // Bytes of the tokens of a message, simulating when the cipher acquires a key so "s" is sized right.
    private int Overhead(MessagePattern message, out bool payloadEncrypted)
    {
        var hasKey = _symmetric.Cipher.HasKey;
        var dhLength = Protocol.Dh.DhLength;
        var length = 0;
        foreach (var token in message.Tokens)
        {
            switch (token)
            {
                case NoiseToken.E:
                    length += dhLength;
                    hasKey |= _pattern.PskCount > 0;
                    break;
                case NoiseToken.S:
                    length += dhLength + (hasKey ? NoiseConstants.TagLength : 0);
                    break;
                default:
                    hasKey = true;
                    break;
            }
        }

        payloadEncrypted = hasKey;
        return length;
    }

    private void EnsureTurn(bool write)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_failed)
        {
            throw new NoiseException(NoiseErrorKind.WrongState, "The handshake was aborted by an earlier error.");
        }

        if (IsCompleted)
        {
            throw new NoiseException(NoiseErrorKind.WrongState, "The handshake is complete; use the transport.");
        }

        if (IsMyTurn != write)
        {
            throw new NoiseException(NoiseErrorKind.WrongState, write ? "It is the peer's turn to send." : "It is this side's turn to send.");
        }
    }

    private void Abort()
    {
        // A fallback needs only the DH keys; everything symmetric dies now.
        _failed = true;
        _symmetric.Dispose();
        WipePsks();
    }

    private void WipePsks()
    {
        foreach (var psk in _psks)
        {
            CryptographicOperations.ZeroMemory(psk);
        }
    }

    private static T Required<T>(T? value, string what)
        where T : class =>
        value ?? throw new NoiseException(NoiseErrorKind.MissingPrerequisite, $"The pattern needs a {what}, and none is set.");
}
