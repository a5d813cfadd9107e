using System.Buffers;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>An authority, agents with identities, channel keys and credentials, and an in-memory connection between them.</summary>
internal sealed class ChannelTestKit : IAsyncDisposable
{
    /// <summary>The safety net for awaits that would hang on a bug; never a timing assumption.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    private readonly List<IDisposable> _owned = [];

    private ChannelTestKit(FakeTimeProvider time, AgentIdentity authority)
    {
        Time = time;
        Authority = authority;
        Anchors = new TrustAnchors().Trust(authority.Verified);
    }

    public FakeTimeProvider Time { get; }

    public AgentIdentity Authority { get; }

    public TrustAnchors Anchors { get; }

    public RevocationRegistry Revocations { get; } = new();

    /// <summary>
    /// Pipes whose reader continuations run inline in the writer's flush: a record written by one side is
    /// processed by the other side's pump before the flush returns, so fake time can be advanced step by step
    /// without racing the pumps.
    /// </summary>
    public static PipeOptions InlineReaders { get; } = new(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.ThreadPool, useSynchronizationContext: false);

    public static async Task<ChannelTestKit> CreateAsync()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
        var signer = InMemorySigner.Generate();
        var kit = new ChannelTestKit(time, await AgentIdentity.CreateAsync(signer, time));
        kit._owned.Add(signer);
        return kit;
    }

    /// <summary>An agent with a credential from the authority granting <paramref name="attributes"/> (none when null).</summary>
    public async Task<Agent> CreateAgentAsync(string[]? attributes = null, TimeSpan? credentialLifetime = null, string principal = "user:alice", byte[]? signerSeed = null, byte[]? channelPrivateKey = null)
    {
        var signer = signerSeed is null ? InMemorySigner.Generate() : InMemorySigner.Import(signerSeed);
        _owned.Add(signer);
        var identity = await AgentIdentity.CreateAsync(signer, Time);
        var channelKey = channelPrivateKey is null ? Curve25519Dh.Instance.GenerateKeyPair() : Curve25519Dh.Instance.ImportPrivateKey(channelPrivateKey);
        _owned.Add(channelKey);
        var attestation = await identity.AttestChannelKeyAsync(channelKey.PublicKey.ToArray(), TimeSpan.FromDays(1), Time);
        var chains = new List<CredentialChain>();
        if (attributes is not null)
        {
            var now = Time.GetUtcNow();
            chains.Add(await CredentialIssuer.IssueAsync(Authority, identity.Identifier, Principal.Parse(principal), AttributeSet.Parse(attributes), now, now + (credentialLifetime ?? TimeSpan.FromHours(1)), 2));
        }

        return new Agent(identity, channelKey, attestation, chains);
    }

    /// <summary>A credential from the kit's authority for <paramref name="agent"/>, valid from now for <paramref name="lifetime"/>.</summary>
    public Task<CredentialChain> IssueAsync(Agent agent, string[] attributes, TimeSpan lifetime, string principal = "user:alice")
    {
        var now = Time.GetUtcNow();
        return CredentialIssuer.IssueAsync(Authority, agent.Identity.Identifier, Principal.Parse(principal), AttributeSet.Parse(attributes), now, now + lifetime, 2);
    }

    /// <summary>A fresh X25519 key pair owned (and disposed) by the kit.</summary>
    public DhKeyPair CreateChannelKey()
    {
        var key = Curve25519Dh.Instance.GenerateKeyPair();
        _owned.Add(key);
        return key;
    }

    /// <summary>A second authority with its own identity, not trusted by the kit's anchors.</summary>
    public async Task<AgentIdentity> CreateOtherAuthorityAsync()
    {
        var signer = InMemorySigner.Generate();
        _owned.Add(signer);
        return await AgentIdentity.CreateAsync(signer, Time);
    }

    public SecureChannelOptions Options(Agent agent, string? policy = "true", Action<ChannelEvent>? events = null, ChannelSettings? settings = null)
    {
        settings ??= ChannelSettings.Default;
        return new()
        {
            Identity = agent.Identity,
            ChannelKey = agent.ChannelKey,
            Attestation = agent.Attestation,
            Credentials = agent.Credentials,
            Verifier = settings.Verifier ?? new CredentialVerifier(Anchors, Revocations, Time),
            Revocations = Revocations,
            Policy = policy is null ? null : AccessPolicy.Parse(policy),
            TimeProvider = Time,
            Events = events,
            Logger = settings.Logger ?? NullLogger.Instance,
            MessageFilter = settings.MessageFilter,
            MaxMessageSize = settings.MaxMessageSize,
            HandshakeTimeout = settings.HandshakeTimeout,
            KeepaliveInterval = settings.KeepaliveInterval,
            IdleTimeout = settings.IdleTimeout,
            RekeyAfterMessages = settings.RekeyAfterMessages,
            RekeyAfterTime = settings.RekeyAfterTime,
            ReceiveQueueCapacity = settings.ReceiveQueueCapacity,
            SendAcknowledgements = settings.SendAcknowledgements,
        };
    }

    /// <summary>Two pipes crossed: what one side writes, the other reads.</summary>
    public static (IDuplexPipe Initiator, IDuplexPipe Responder) CreateConnection(PipeOptions? options = null)
    {
        var toResponder = new Pipe(options ?? PipeOptions.Default);
        var toInitiator = new Pipe(options ?? PipeOptions.Default);
        return (new DuplexPipe(toInitiator.Reader, toResponder.Writer), new DuplexPipe(toResponder.Reader, toInitiator.Writer));
    }

    /// <summary>Opens both ends of a channel concurrently.</summary>
    public static async Task<(SecureChannel Initiator, SecureChannel Responder)> OpenAsync(SecureChannelOptions initiator, SecureChannelOptions responder, (IDuplexPipe Initiator, IDuplexPipe Responder)? connection = null)
    {
        var (a, b) = connection ?? CreateConnection();
        var accept = SecureChannel.AcceptAsync(b, responder);
        var connect = SecureChannel.ConnectAsync(a, initiator);
        return (await connect.WaitAsync(Guard), await accept.WaitAsync(Guard));
    }

    /// <summary>
    /// Advances fake time by <paramref name="step"/> until <paramref name="until"/> completes, yielding between
    /// steps so continuations run; at most <paramref name="maxSteps"/> steps, then waits (with the guard).
    /// </summary>
    public async Task AdvanceUntilAsync(Task until, TimeSpan step, int maxSteps)
    {
        for (var i = 0; i < maxSteps && !until.IsCompleted; i++)
        {
            Time.Advance(step);
            await Task.Yield();
        }

        try
        {
            await until.WaitAsync(Guard);
        }
        catch (Exception) when (until.IsCompleted)
        {
            // The caller inspects the outcome.
        }
    }

    /// <summary>Advances fake time by <paramref name="step"/>, <paramref name="steps"/> times, yielding between steps.</summary>
    public async Task AdvanceAsync(TimeSpan step, int steps)
    {
        for (var i = 0; i < steps; i++)
        {
            Time.Advance(step);
            await Task.Yield();
        }
    }

    /// <summary>Yields until <paramref name="condition"/> holds; <see cref="Guard"/> (real time) is only a safety net.</summary>
    public static async Task UntilAsync(Func<bool> condition)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (started.Elapsed > Guard)
            {
                throw new TimeoutException("The condition did not become true.");
            }

            await Task.Yield();
        }
    }

    public static byte[] Pattern(int size, int seed) => [.. Enumerable.Range(0, size).Select(i => (byte)((i * 31) + seed))];

    public ValueTask DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            owned.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    internal sealed record Agent(AgentIdentity Identity, DhKeyPair ChannelKey, SignedKeyAttestation Attestation, IReadOnlyList<CredentialChain> Credentials);

    /// <summary>The limits and hooks a test changes; the defaults are those of <see cref="SecureChannelOptions"/>.</summary>
    internal sealed record ChannelSettings
    {
        public static ChannelSettings Default { get; } = new();

        public int MaxMessageSize { get; init; } = 16 * 1024 * 1024;

        public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

        public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(15);

        public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

        public long RekeyAfterMessages { get; init; } = 1L << 20;

        public TimeSpan RekeyAfterTime { get; init; } = TimeSpan.FromMinutes(2);

        public int ReceiveQueueCapacity { get; init; } = 16;

        public bool SendAcknowledgements { get; init; } = true;

        public Func<VerifiedPeer, ReadOnlySequence<byte>, bool>? MessageFilter { get; init; }

        public ILogger? Logger { get; init; }

        /// <summary>A verifier to reuse across options (and so its cache); a fresh one on the kit's anchors when null.</summary>
        public CredentialVerifier? Verifier { get; init; }
    }

    /// <summary>
    /// A message filter that lets everything through and counts: a test can wait until the peer's pump has taken
    /// in a given number of messages (the filter runs just before a message enters the receive queue).
    /// </summary>
    internal sealed class MessageProbe
    {
        private readonly Lock _lock = new();
        private readonly List<(int Count, TaskCompletionSource Signal)> _waiters = [];
        private int _seen;

        public Func<VerifiedPeer, ReadOnlySequence<byte>, bool> Filter => (_, _) =>
        {
            lock (_lock)
            {
                _seen++;
                foreach (var waiter in _waiters.Where(w => w.Count <= _seen))
                {
                    waiter.Signal.TrySetResult();
                }
            }

            return true;
        };

        public Task SeenAsync(int count)
        {
            lock (_lock)
            {
                if (_seen >= count)
                {
                    return Task.CompletedTask;
                }

                var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, signal));
                return signal.Task.WaitAsync(Guard);
            }
        }
    }

    internal sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }
}
