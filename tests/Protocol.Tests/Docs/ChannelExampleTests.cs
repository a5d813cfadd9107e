using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Tests.Docs;

/// <summary>
/// docs/protocol.md §8.8 "Worked example": a channel handshake with fixed identity, channel and ephemeral
/// keys, recorded on the wire and compared with the document.
/// </summary>
public sealed class ChannelExampleTests
{
    private static readonly DateTimeOffset ExampleTime = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task TheChannelExampleOfTheProtocolDocumentIsReproduced()
    {
        var documented = ProtocolDocument.ReadExamples("channel-example");
        var computed = await RunExampleAsync();

        Assert.Equal(computed.Keys.Order(), documented.Keys.Order());
        var differences = computed
            .Where(c => documented[c.Key] != c.Value)
            .Select(c => $"docs/protocol.md channel example '{c.Key}' differs from the code:\n  doc:  {documented[c.Key]}\n  code: {c.Value}")
            .ToList();
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }

    private static async Task<Dictionary<string, string>> RunExampleAsync()
    {
        var clock = new FixedClock(ExampleTime);
        using var authoritySigner = InMemorySigner.Import(Bytes(0x01));
        var authority = await AgentIdentity.CreateAsync(authoritySigner, clock);
        var anchors = new TrustAnchors().Trust(authority.Verified);
        await using var alice = await Side.CreateAsync(authority, clock, anchors, seed: 0x02, channel: 0x11, ephemeral: 0x21, credentialId: 0xa0, "role=billing", "user:alice");
        await using var bob = await Side.CreateAsync(authority, clock, anchors, seed: 0x03, channel: 0x12, ephemeral: 0x22, credentialId: 0xb0, "role=ledger", "team:finance");

        var toBob = new RecordingLink();
        var toAlice = new RecordingLink();
        var accept = SecureChannel.AcceptAsync(new Duplex(toBob.Reader, toAlice.Writer), bob.Options);
        var connect = SecureChannel.ConnectAsync(new Duplex(toAlice.Reader, toBob.Writer), alice.Options);
        await using var aliceChannel = await connect;
        await using var bobChannel = await accept;

        var fromAlice = toBob.Frames();
        var fromBob = toAlice.Frames();
        return new Dictionary<string, string>
        {
            ["alice-id"] = alice.Options.Identity.Identifier.ToString(),
            ["bob-id"] = bob.Options.Identity.Identifier.ToString(),
            ["message-1"] = Convert.ToHexStringLower(fromAlice[0]),
            ["message-2-length"] = fromBob[0].Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["message-2-sha256"] = Convert.ToHexStringLower(SHA256.HashData(fromBob[0])),
            ["message-3-length"] = fromAlice[1].Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["message-3-sha256"] = Convert.ToHexStringLower(SHA256.HashData(fromAlice[1])),
            ["accept-record"] = Convert.ToHexStringLower(fromBob[1]),
            ["handshake-hash"] = Convert.ToHexStringLower(aliceChannel.HandshakeHash.Span),
        };
    }

    private static byte[] Bytes(byte value) => Enumerable.Repeat(value, 32).ToArray();

    private sealed class Side : IAsyncDisposable
    {
        private readonly InMemorySigner _signer;
        private readonly DhKeyPair _channelKey;

        private Side(InMemorySigner signer, DhKeyPair channelKey, SecureChannelOptions options)
        {
            _signer = signer;
            _channelKey = channelKey;
            Options = options;
        }

        public SecureChannelOptions Options { get; }

        public static async Task<Side> CreateAsync(AgentIdentity authority, TimeProvider clock, TrustAnchors anchors, byte seed, byte channel, byte ephemeral, byte credentialId, string attribute, string principal)
        {
            var signer = InMemorySigner.Import(Bytes(seed));
            var identity = await AgentIdentity.CreateAsync(signer, clock);
            var channelKey = Curve25519Dh.Instance.ImportPrivateKey(Bytes(channel));
            var attestation = await identity.AttestChannelKeyAsync(channelKey.PublicKey.ToArray(), TimeSpan.FromDays(1), clock);
            var credential = new Credential(Enumerable.Repeat(credentialId, 16).ToArray(), authority.Identifier, identity.Identifier, Principal.Parse(principal), AttributeSet.Parse([attribute]), ExampleTime, ExampleTime.AddHours(1), 0, null);
            var signature = await SignatureDomain.SignAsync(authority.Signer, SignatureDomain.Credential, credential.Encoded);
            var chain = new CredentialChain([new SignedCredential(credential, authority.Verified.Current.ChangeHash, signature)], []);
            var options = new SecureChannelOptions
            {
                Identity = identity,
                ChannelKey = channelKey,
                Attestation = attestation,
                Credentials = [chain],
                Verifier = new CredentialVerifier(anchors, new RevocationRegistry(), clock),
                Policy = AccessPolicy.Parse("has(subject.role)"),
                TimeProvider = clock,
                FixedEphemeralPrivateKeyForTestingOnly = Bytes(ephemeral),
            };
            return new Side(signer, channelKey, options);
        }

        public ValueTask DisposeAsync()
        {
            _channelKey.Dispose();
            _signer.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>One direction of the connection, keeping a copy of every byte written.</summary>
    private sealed class RecordingLink
    {
        private readonly Pipe _pipe = new();
        private readonly Recorder _writer;

        public RecordingLink() => _writer = new Recorder(_pipe.Writer);

        public PipeReader Reader => _pipe.Reader;

        public PipeWriter Writer => _writer;

        /// <summary>The frame bodies written so far (each after its 2-byte length).</summary>
        public List<byte[]> Frames()
        {
            var bytes = new ReadOnlySequence<byte>(_writer.Written.ToArray());
            var frames = new List<byte[]>();
            while (SecureChannels.Protocol.Wire.LengthPrefixedFrame.TryRead(ref bytes, out var body))
            {
                frames.Add(body.ToArray());
            }

            return frames;
        }
    }

    private sealed class Recorder(PipeWriter inner) : PipeWriter
    {
        private Memory<byte> _last;

        public List<byte> Written { get; } = [];

        public override void Advance(int bytes)
        {
            Written.AddRange(_last.Span[..bytes].ToArray());
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => _last = inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => (_last = inner.GetMemory(sizeHint)).Span;

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
