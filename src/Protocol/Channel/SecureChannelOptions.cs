using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// Who this side is, whom it accepts, and the channel's limits. Every limit has one name, one default and
/// one line of why; the same names are in docs/protocol.md §8.
/// </summary>
public sealed class SecureChannelOptions
{
    private int _maxMessageSize = 16 * 1024 * 1024;
    private TimeSpan _handshakeTimeout = TimeSpan.FromSeconds(10);
    private TimeSpan _keepaliveInterval = TimeSpan.FromSeconds(15);
    private TimeSpan _idleTimeout = TimeSpan.FromSeconds(60);
    private long _rekeyAfterMessages = 1L << 20;
    private TimeSpan _rekeyAfterTime = TimeSpan.FromMinutes(2);
    private int _receiveQueueCapacity = 16;
    private int _handshakePaddingBlock = 256;
    private int _maxCredentialChains = 8;
    private int _maxCredentialUpdatesPerMinute = 10;

    /// <summary>This side's identity (its history is sent to the peer).</summary>
    public required AgentIdentity Identity { get; init; }

    /// <summary>This side's X25519 static key for Noise; borrowed, not disposed by the channel.</summary>
    public required DhKeyPair ChannelKey { get; init; }

    /// <summary>The attestation that <see cref="ChannelKey"/> belongs to <see cref="Identity"/>.</summary>
    public required SignedKeyAttestation Attestation { get; init; }

    /// <summary>The credential chains this side presents (its authority).</summary>
    public IReadOnlyList<CredentialChain> Credentials { get; init; } = [];

    /// <summary>
    /// Verifies the peer's credentials: its trust anchors, revocation registry and clock. Its
    /// <see cref="CredentialVerifier.Cache"/> also remembers the peer identities and key attestations that verified in
    /// handshakes, so give every channel the same verifier: a repeat peer then costs no signature verification.
    /// </summary>
    public required CredentialVerifier Verifier { get; init; }

    /// <summary>The registry the verifier consults; when set, a newer list re-checks open channels at once.</summary>
    public RevocationRegistry? Revocations { get; init; }

    /// <summary>Who may connect. Null means nobody: deny by default.</summary>
    public AccessPolicy? Policy { get; init; }

    /// <summary>Values the policy sees as <c>context.NAME</c>.</summary>
    public IReadOnlyDictionary<string, PolicyValue> PolicyContext { get; init; } = new Dictionary<string, PolicyValue>();

    /// <summary>Called for each received message before it is delivered; returning false closes the channel with <see cref="ChannelErrorCode.AccessDenied"/>.</summary>
    public Func<VerifiedPeer, System.Buffers.ReadOnlySequence<byte>, bool>? MessageFilter { get; init; }

    /// <summary>The clock for every timeout, keepalive, rekey and expiry.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where channel events are logged (identities, never keys).</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>Receives every channel event (opened, denied, rekeyed, closed) as a structured record.</summary>
    public Action<ChannelEvent>? Events { get; init; }

    /// <summary>
    /// Largest application message, in bytes: bounds what a peer can make this side buffer for one message.
    /// Defaults to 16 MiB. Must be between 1 and 1 GiB.
    /// </summary>
    public int MaxMessageSize
    {
        get => _maxMessageSize;
        init => _maxMessageSize = InRange(value, 1, 1 << 30);
    }

    /// <summary>How long the whole handshake may take: a peer that stalls mid-handshake holds nothing longer. Defaults to 10 s; 1 s to 5 min.</summary>
    public TimeSpan HandshakeTimeout
    {
        get => _handshakeTimeout;
        init => _handshakeTimeout = InRange(value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
    }

    /// <summary>Send a keepalive when nothing was sent for this long, so the peer's idle timer is fed. Defaults to 15 s; 1 s to 10 min.</summary>
    public TimeSpan KeepaliveInterval
    {
        get => _keepaliveInterval;
        init => _keepaliveInterval = InRange(value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10));
    }

    /// <summary>Close when nothing arrived for this long: four missed keepalives at the defaults. Defaults to 60 s; 2 s to 1 h.</summary>
    public TimeSpan IdleTimeout
    {
        get => _idleTimeout;
        init => _idleTimeout = InRange(value, TimeSpan.FromSeconds(2), TimeSpan.FromHours(1));
    }

    /// <summary>Rekey the sending direction after this many messages, bounding what one key protects. Defaults to 2^20; 1 to 2^60.</summary>
    public long RekeyAfterMessages
    {
        get => _rekeyAfterMessages;
        init => _rekeyAfterMessages = InRange(value, 1, 1L << 60);
    }

    /// <summary>Rekey the sending direction after this long (WireGuard's 120 s), so a key later stolen reveals at most this much. Defaults to 2 min; 1 s to 1 day.</summary>
    public TimeSpan RekeyAfterTime
    {
        get => _rekeyAfterTime;
        init => _rekeyAfterTime = InRange(value, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));
    }

    /// <summary>Complete messages held for a reader that is not reading; past this the channel stops reading the connection (back-pressure). Defaults to 16; 1 to 1024.</summary>
    public int ReceiveQueueCapacity
    {
        get => _receiveQueueCapacity;
        init => _receiveQueueCapacity = InRange(value, 1, 1024);
    }

    /// <summary>Handshake payloads are padded to a multiple of this, hiding the exact size of identities and credentials. Defaults to 256; 1 (no padding) to 4096.</summary>
    public int HandshakePaddingBlock
    {
        get => _handshakePaddingBlock;
        init => _handshakePaddingBlock = InRange(value, 1, 4096);
    }

    /// <summary>Most credential chains accepted from a peer, in the handshake or in one credential update: bounds the verification work a peer can demand. Defaults to 8; 0 to 64.</summary>
    public int MaxCredentialChains
    {
        get => _maxCredentialChains;
        init => _maxCredentialChains = InRange(value, 0, 64);
    }

    /// <summary>
    /// Whether this side sends ACK records (docs/protocol.md §8.3), from which the peer learns which of its messages
    /// arrived. On by default. A channel whose delivery is accounted for by a layer above can turn it off and save a
    /// record per batch read: a relay hop, whose circuits have their own credit and whose end-to-end channels inside
    /// acknowledge for themselves. The peer's <see cref="SecureChannel.MessagesAcknowledged"/> then stays 0.
    /// </summary>
    public bool SendAcknowledgements { get; init; } = true;

    /// <summary>
    /// Most CREDENTIAL_UPDATE records accepted from a peer in one minute; one more closes the channel with
    /// <see cref="ChannelErrorCode.ProtocolError"/>. Each costs this side a chain verification, and a refresh is due
    /// about once a credential lifetime (an hour), so this bounds the work an authenticated peer can demand without
    /// touching honest use. Defaults to 10; 1 to 1000.
    /// </summary>
    public int MaxCredentialUpdatesPerMinute
    {
        get => _maxCredentialUpdatesPerMinute;
        init => _maxCredentialUpdatesPerMinute = InRange(value, 1, 1000);
    }

    /// <summary>
    /// TESTING ONLY: fixes the Noise ephemeral private key so docs/protocol.md's worked example can be
    /// reproduced byte for byte. A fixed ephemeral key destroys forward secrecy, hence internal.
    /// </summary>
    internal byte[]? FixedEphemeralPrivateKeyForTestingOnly { get; init; }

    /// <summary>
    /// Asks <see cref="Policy"/> about <paramref name="peer"/> (deny without a policy): at the handshake and again
    /// whenever the peer presents new credentials, with the same input both times.
    /// </summary>
    internal bool PolicyAllows(VerifiedPeer peer) =>
        AccessPolicy.EvaluateOrDeny(Policy, PeerPolicyInput.Create(peer, PolicyContext)) == PolicyDecision.Allow;

    private static T InRange<T>(T value, T min, T max)
        where T : IComparable<T>
    {
        if (value.CompareTo(min) < 0 || value.CompareTo(max) > 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"Must be between {min} and {max}.");
        }

        return value;
    }
}
