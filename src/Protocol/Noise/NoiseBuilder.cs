using System.Security.Cryptography;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Noise;

/// <summary>
/// Gathers what a handshake needs and checks, when it builds, that the pattern's prerequisites are all there:
/// a missing key is an error naming it, never a null reference later.
/// </summary>
/// <example>
/// <code>
/// using var handshake = new NoiseBuilder("Noise_XX_25519_ChaChaPoly_BLAKE2b")
///     .WithLocalStaticPrivateKey(staticKey)
///     .WithPrologue(prologue)
///     .BuildInitiator();
/// </code>
/// </example>
/// <remarks>Each value can be set once; a second call throws <see cref="NoiseErrorKind.InvalidConfiguration"/>.</remarks>
public sealed class NoiseBuilder : IDisposable
{
    private readonly List<byte[]> _psks = [];
    private byte[]? _prologue;
    private byte[]? _localStatic;
    private byte[]? _remoteStatic;
    private byte[]? _fixedEphemeral;
    private DhKeyPair? _borrowedStatic;
    private bool _disposed;

    /// <summary>Starts a builder for the protocol named <paramref name="protocolName"/>.</summary>
    /// <exception cref="NoiseException">As <see cref="NoiseProtocol.Parse"/>.</exception>
    public NoiseBuilder(string protocolName, ICryptoResolver? resolver = null)
        : this(NoiseProtocol.Parse(protocolName, resolver))
    {
    }

    /// <summary>Starts a builder for an already parsed protocol.</summary>
    public NoiseBuilder(NoiseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        Protocol = protocol;
    }

    /// <summary>The protocol being built.</summary>
    public NoiseProtocol Protocol { get; }

    /// <summary>Bytes both sides must agree on before the handshake (spec §6); any mismatch fails the handshake.</summary>
    public NoiseBuilder WithPrologue(ReadOnlySpan<byte> prologue)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        SetOnce(ref _prologue, prologue, "prologue");
        return this;
    }

    /// <summary>This side's static private key (DHLEN bytes). The builder keeps a copy until it builds.</summary>
    public NoiseBuilder WithLocalStaticPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckLength(privateKey, Protocol.Dh.DhLength, "local static private key");
        EnsureNoStatic();
        SetOnce(ref _localStatic, privateKey, "local static private key");
        return this;
    }

    /// <summary>
    /// This side's static key pair, for a long-lived key used in many handshakes (the private key never leaves
    /// it). The handshake borrows it: the caller keeps ownership and must not dispose it before the handshakes
    /// built here are over.
    /// </summary>
    public NoiseBuilder WithLocalStaticKeyPair(DhKeyPair keyPair)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(keyPair);
        CheckLength(keyPair.PublicKey, Protocol.Dh.DhLength, "local static public key");
        EnsureNoStatic();
        _borrowedStatic = keyPair;
        return this;
    }

    /// <summary>The peer's static public key, for patterns whose pre-message carries it (a K on the peer's side, or the responder key of N, K, X and the ?K patterns).</summary>
    public NoiseBuilder WithRemoteStaticPublicKey(ReadOnlySpan<byte> publicKey)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckLength(publicKey, Protocol.Dh.DhLength, "remote static public key");
        SetOnce(ref _remoteStatic, publicKey, "remote static public key");
        return this;
    }

    /// <summary>The next pre-shared key (32 bytes), in the order the psk modifiers appear in the protocol name.</summary>
    public NoiseBuilder WithPsk(ReadOnlySpan<byte> psk)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckLength(psk, NoiseConstants.PskLength, "pre-shared key");
        if (_psks.Count == Protocol.Pattern.PskCount)
        {
            throw new NoiseException(NoiseErrorKind.InvalidConfiguration, $"{Protocol.Pattern.Name} takes {Protocol.Pattern.PskCount} pre-shared keys; this is one more.");
        }

        _psks.Add(psk.ToArray());
        return this;
    }

    /// <summary>
    /// TESTING ONLY: fixes the ephemeral private key instead of generating a fresh one, so test vectors can be
    /// reproduced. A fixed ephemeral key destroys forward secrecy and, reused, the secrecy of every message;
    /// so it is internal, visible only to the conformance runner and the tests.
    /// </summary>
    internal NoiseBuilder WithFixedEphemeralPrivateKeyForTestingOnly(ReadOnlySpan<byte> privateKey)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckLength(privateKey, Protocol.Dh.DhLength, "ephemeral private key");
        SetOnce(ref _fixedEphemeral, privateKey, "ephemeral private key");
        return this;
    }

    /// <summary>Builds the initiator's handshake.</summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.MissingPrerequisite"/> or <see cref="NoiseErrorKind.InvalidConfiguration"/>, naming what is missing or superfluous.</exception>
    public HandshakeState BuildInitiator() => Build(isInitiator: true, previous: null);

    /// <summary>Builds the responder's handshake.</summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.MissingPrerequisite"/> or <see cref="NoiseErrorKind.InvalidConfiguration"/>, naming what is missing or superfluous.</exception>
    public HandshakeState BuildResponder() => Build(isInitiator: false, previous: null);

    /// <summary>
    /// Builds a fallback handshake (spec §10.2, for example <c>XXfallback</c> after a failed <c>IK</c>) from the
    /// state that failed. Each side keeps its role; the initiator's first message becomes a pre-message made of
    /// the keys the failed attempt already exchanged, and the local keys move from <paramref name="failed"/> to
    /// the new state.
    /// </summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.InvalidConfiguration"/> when this protocol is not a fallback pattern; <see cref="NoiseErrorKind.MissingPrerequisite"/> when the failed state lacks the keys.</exception>
    public HandshakeState BuildFallback(HandshakeState failed)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(failed);
        if (failed.Protocol.Dh != Protocol.Dh)
        {
            throw new NoiseException(NoiseErrorKind.InvalidConfiguration, "A fallback must use the DH function of the handshake it replaces.");
        }

        if (!Protocol.Pattern.IsFallback)
        {
            throw new NoiseException(NoiseErrorKind.InvalidConfiguration, $"{Protocol.Pattern.Name} is not a fallback pattern.");
        }

        return Build(failed.IsInitiator, failed);
    }

    private HandshakeState Build(bool isInitiator, HandshakeState? previous)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var pattern = Protocol.Pattern;
        var localPre = isInitiator ? pattern.InitiatorPreMessage : pattern.ResponderPreMessage;
        var remotePre = isInitiator ? pattern.ResponderPreMessage : pattern.InitiatorPreMessage;
        var sendsStatic = localPre.Contains(NoiseToken.S) || pattern.Messages.Any(m => m.FromInitiator == isInitiator && m.Tokens.Contains(NoiseToken.S));
        var knowsRemoteStatic = remotePre.Contains(NoiseToken.S);

        if (_psks.Count != pattern.PskCount)
        {
            throw new NoiseException(NoiseErrorKind.MissingPrerequisite, $"{pattern.Name} needs {pattern.PskCount} pre-shared keys; {_psks.Count} were given.");
        }

        if (knowsRemoteStatic && _remoteStatic is null)
        {
            throw new NoiseException(NoiseErrorKind.MissingPrerequisite, $"{pattern.Name} needs the remote static public key in advance.");
        }

        if (!knowsRemoteStatic && _remoteStatic is not null)
        {
            throw new NoiseException(NoiseErrorKind.InvalidConfiguration, $"{pattern.Name} learns the remote static key during the handshake; one given in advance would not be checked.");
        }

        var hasStatic = _localStatic is not null || _borrowedStatic is not null;
        if (!sendsStatic && hasStatic)
        {
            throw new NoiseException(NoiseErrorKind.InvalidConfiguration, $"{pattern.Name} has no static key on this side.");
        }

        DhKeyPair? localStatic = _borrowedStatic;
        var ownsStatic = false;
        DhKeyPair? localEphemeral = null;
        byte[]? remoteEphemeral = null;
        var built = false;
        try
        {
            if (previous is not null)
            {
                // Check before taking anything, so a refused fallback leaves the failed state's keys intact.
                if (!(isInitiator ? previous.LocalEphemeral is not null : previous.RemoteEphemeralPublicKey is not null))
                {
                    throw new NoiseException(NoiseErrorKind.MissingPrerequisite, "The failed handshake never exchanged the initiator's ephemeral key, so there is nothing to fall back from.");
                }

                var (previousStatic, ownsPrevious, previousEphemeral) = previous.ReleaseKeysForFallback();
                localEphemeral = previousEphemeral;
                remoteEphemeral = previous.RemoteEphemeralPublicKey;
                if (hasStatic)
                {
                    // The builder names a static key of its own: the failed attempt's one is no longer needed.
                    if (ownsPrevious)
                    {
                        previousStatic?.Dispose();
                    }
                }
                else
                {
                    (localStatic, ownsStatic) = (previousStatic, ownsPrevious);
                }
            }

            if (_localStatic is not null)
            {
                localStatic = Protocol.Dh.ImportPrivateKey(_localStatic);
                ownsStatic = true;
            }

            if (sendsStatic && localStatic is null)
            {
                throw new NoiseException(NoiseErrorKind.MissingPrerequisite, $"{pattern.Name} needs a local static private key on this side.");
            }

            var state = new HandshakeState(
                Protocol,
                isInitiator,
                _prologue,
                localStatic,
                ownsStatic,
                localEphemeral,
                _remoteStatic?.ToArray(),
                remoteEphemeral?.ToArray(),
                [.. _psks.Select(p => p.ToArray())],
                _fixedEphemeral?.ToArray());
            built = true;
            return state;
        }
        finally
        {
            if (!built)
            {
                if (ownsStatic)
                {
                    localStatic?.Dispose();
                }

                localEphemeral?.Dispose();
            }
        }
    }

    private void EnsureNoStatic()
    {
        if (_localStatic is not null || _borrowedStatic is not null)
        {
            throw new NoiseException(NoiseErrorKind.InvalidConfiguration, "The local static key is already set.");
        }
    }

    private static void SetOnce(ref byte[]? field, ReadOnlySpan<byte> value, string what)
    {
        if (field is not null)
        {
            throw new NoiseException(NoiseErrorKind.InvalidConfiguration, $"The {what} is already set.");
        }

        field = value.ToArray();
    }

    private static void CheckLength(ReadOnlySpan<byte> value, int expected, string what)
    {
        if (value.Length != expected)
        {
            throw new NoiseException(NoiseErrorKind.InvalidKey, $"The {what} must be {expected} bytes, not {value.Length}.");
        }
    }

    /// <summary>Wipes the key copies the builder holds; the states it built are not affected.</summary>
    public void Dispose()
    {
        _disposed = true;
        _borrowedStatic = null;
        foreach (var secret in _psks.Append(_localStatic).Append(_fixedEphemeral))
        {
            if (secret is not null)
            {
                CryptographicOperations.ZeroMemory(secret);
            }
        }

        _psks.Clear();
    }
}
