using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using SecureChannels.Protocol.Channel;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>What a passive observer of the wire sees (no plaintext, no identities), and what the audit trail says (everything but keys).</summary>
public sealed class SecureChannelConfidentialityAndAuditTests
{
    private const string MessageMarker = "PLAINTEXT-MARKER-1234";

    [Fact]
    public async Task NeitherMessagesNorIdentitiesNorAttributesAreVisibleOnTheWire()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=SECRET-ROLE-MARKER"], principal: "user:SECRET-PRINCIPAL-MARKER");
        var bob = await kit.CreateAgentAsync(["role=BOB-ROLE-MARKER", "team=BOB-TEAM-MARKER"], principal: "team:BOB-PRINCIPAL-MARKER");
        var mitm = new FaultyConnection(capture: true);
        var (a, b) = await ChannelTestKit.OpenAsync(
            kit.Options(alice, "subject.role == \"BOB-ROLE-MARKER\""),
            kit.Options(bob, "subject.role == \"SECRET-ROLE-MARKER\""),
            mitm.Ends);
        await using (a)
        await using (b)
        {
            var small = Encoding.UTF8.GetBytes(MessageMarker);
            var large = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(MessageMarker + " ", 5000)));
            var plaintext = 0L;
            foreach (var (sender, receiver) in new[] { (a, b), (b, a) })
            {
                foreach (var message in new[] { small, large, small })
                {
                    await sender.SendAsync(message);
                    using var received = await receiver.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                    Assert.Equal(message, received!.Payload.ToArray());
                    plaintext += message.Length;
                }
            }

            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            await b.Completion.WaitAsync(ChannelTestKit.Guard);
            await Task.WhenAll(mitm.ToResponder.Completion, mitm.ToInitiator.Completion).WaitAsync(ChannelTestKit.Guard);

            var wire = new[] { mitm.ToResponder.Capture(), mitm.ToInitiator.Capture() }.SelectMany(c => new[] { c.Seen, c.Sent }).ToArray();
            Assert.True(wire.Sum(w => w.LongLength) >= 2 * plaintext, "The capture missed traffic.");

            var secrets = new Dictionary<string, byte[]>
            {
                ["message marker"] = Encoding.UTF8.GetBytes(MessageMarker),
                ["alice's attribute value"] = "SECRET-ROLE-MARKER"u8.ToArray(),
                ["alice's principal"] = "SECRET-PRINCIPAL-MARKER"u8.ToArray(),
                ["bob's attribute values"] = "BOB-ROLE-MARKER"u8.ToArray(),
                ["bob's team"] = "BOB-TEAM-MARKER"u8.ToArray(),
                ["bob's principal"] = "BOB-PRINCIPAL-MARKER"u8.ToArray(),
                ["alice's identifier"] = alice.Identity.Identifier.Bytes.ToArray(),
                ["bob's identifier"] = bob.Identity.Identifier.Bytes.ToArray(),
                ["alice's identity key"] = alice.Identity.Verified.PublicKey.ToArray(),
                ["bob's identity key"] = bob.Identity.Verified.PublicKey.ToArray(),
                ["alice's static channel key"] = alice.ChannelKey.PublicKey.ToArray(),
                ["bob's static channel key"] = bob.ChannelKey.PublicKey.ToArray(),
                ["alice's credential id"] = alice.Credentials[0].Leaf.Credential.Id,
                ["bob's credential id"] = bob.Credentials[0].Leaf.Credential.Id,
                ["the authority's identifier"] = kit.Authority.Identifier.Bytes.ToArray(),
            };
            foreach (var (name, secret) in secrets)
            {
                Assert.True(wire.All(w => w.AsSpan().IndexOf(secret) < 0), $"{name} is visible on the wire.");
            }
        }
    }

    [Fact]
    public async Task TheAuditTrailNamesPeersPrincipalsCredentialsAndCodesButNeverKeysOrMessages()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var secrets = Enumerable.Range(0, 4).Select(_ => RandomNumberGenerator.GetBytes(32)).ToArray();
        var alice = await kit.CreateAgentAsync(["role=a"], principal: "user:alice", signerSeed: secrets[0], channelPrivateKey: secrets[1]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "team:finance", signerSeed: secrets[2], channelPrivateKey: secrets[3]);
        var aliceEvents = new ConcurrentQueue<ChannelEvent>();
        var bobEvents = new ConcurrentQueue<ChannelEvent>();
        var log = new CapturingLogger();
        var settings = new ChannelTestKit.ChannelSettings { RekeyAfterMessages = 2, Logger = log };
        const string AlicePolicy = "subject.role == \"b\"";
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, AlicePolicy, aliceEvents.Enqueue, settings), kit.Options(bob, "true", bobEvents.Enqueue, settings));
        await using (a)
        await using (b)
        {
            var opened = Assert.Single(aliceEvents, e => e.Kind == ChannelEventKind.Opened);
            Assert.Equal(alice.Identity.Identifier, opened.LocalIdentifier);
            Assert.Equal(bob.Identity.Identifier, opened.PeerIdentifier);
            Assert.Equal("team:finance", opened.Principal);
            Assert.Equal([bob.Credentials[0].Leaf.Credential.IdText], opened.CredentialIds.ToArray());
            Assert.Equal(ChannelErrorCode.Normal, opened.Code);
            Assert.Equal(AlicePolicy, opened.Detail);
            var bobOpened = Assert.Single(bobEvents, e => e.Kind == ChannelEventKind.Opened);
            Assert.Equal(alice.Identity.Identifier, bobOpened.PeerIdentifier);
            Assert.Equal("user:alice", bobOpened.Principal);
            Assert.Equal([alice.Credentials[0].Leaf.Credential.IdText], bobOpened.CredentialIds.ToArray());

            for (var i = 0; i < 4; i++)
            {
                await a.SendAsync(Encoding.UTF8.GetBytes(MessageMarker));
                using var message = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            }

            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            await b.Completion.WaitAsync(ChannelTestKit.Guard);

            Assert.Contains(aliceEvents, e => e.Kind == ChannelEventKind.Rekeyed && e.Detail == "sending" && e.PeerIdentifier == bob.Identity.Identifier);
            Assert.Contains(bobEvents, e => e.Kind == ChannelEventKind.Rekeyed && e.Detail == "receiving" && e.PeerIdentifier == alice.Identity.Identifier);
            var closed = Assert.Single(bobEvents, e => e.Kind == ChannelEventKind.Closed);
            Assert.Equal(ChannelErrorCode.Normal, closed.Code);
            Assert.Equal(alice.Identity.Identifier, closed.PeerIdentifier);
            Assert.False(string.IsNullOrEmpty(closed.Detail));
            Assert.Equal(ChannelErrorCode.Normal, Assert.Single(aliceEvents, e => e.Kind == ChannelEventKind.Closed).Code);
        }

        // Every event is also logged (event id 1), naming the identities.
        var events = aliceEvents.Concat(bobEvents).ToArray();
        Assert.Equal(events.Length, log.Entries.Count(e => e.Id == 1));
        Assert.Contains(log.Entries, e => e.Text.Contains(bob.Identity.Identifier.ToString(), StringComparison.Ordinal));

        var texts = events.Select(e => e.ToString() + " " + e.Detail).Concat(log.Entries.Select(e => e.Text)).ToArray();
        foreach (var secret in secrets)
        {
            foreach (var form in new[] { Convert.ToHexStringLower(secret), Convert.ToHexString(secret), Convert.ToBase64String(secret) })
            {
                Assert.DoesNotContain(texts, t => t.Contains(form, StringComparison.Ordinal));
            }
        }

        Assert.DoesNotContain(texts, t => t.Contains(MessageMarker, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ADeniedEventAndItsLogLineCarryThePreciseReasonWhileThePeerGetsOnlyTheCode()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var events = new ConcurrentQueue<ChannelEvent>();
        var log = new CapturingLogger();
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        var accept = SecureChannel.AcceptAsync(responderEnd, kit.Options(bob, "subject.role == \"admin\"", events.Enqueue, new() { Logger = log }));
        var connect = SecureChannel.ConnectAsync(initiatorEnd, kit.Options(alice));

        await Assert.ThrowsAsync<SecureChannelException>(() => accept.WaitAsync(ChannelTestKit.Guard));
        var remote = await Assert.ThrowsAsync<SecureChannelException>(() => connect.WaitAsync(ChannelTestKit.Guard));

        var denied = Assert.Single(events);
        Assert.Equal(ChannelEventKind.Denied, denied.Kind);
        Assert.Equal(ChannelErrorCode.AccessDenied, denied.Code);
        Assert.Contains("access policy denies", denied.Detail, StringComparison.Ordinal);
        Assert.Contains(alice.Identity.Identifier.ToString(), denied.Detail, StringComparison.Ordinal);
        Assert.Contains(log.Entries, e => e.Text.Contains("access policy denies", StringComparison.Ordinal));

        Assert.True(remote.FromPeer);
        Assert.Equal(ChannelErrorCode.AccessDenied, remote.Code);
        Assert.DoesNotContain("policy", remote.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(alice.Identity.Identifier.ToString(), remote.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADeniedEventForAVerifiedPeerNamesThatPeerAndItsCredentials()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var events = new ConcurrentQueue<ChannelEvent>();
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        var accept = SecureChannel.AcceptAsync(responderEnd, kit.Options(bob, "subject.role == \"admin\"", events.Enqueue));
        var connect = SecureChannel.ConnectAsync(initiatorEnd, kit.Options(alice));
        await Assert.ThrowsAsync<SecureChannelException>(() => accept.WaitAsync(ChannelTestKit.Guard));
        await Assert.ThrowsAsync<SecureChannelException>(() => connect.WaitAsync(ChannelTestKit.Guard));

        // The policy judged a verified peer: the structured event should say whom it denied (ChannelEvent:
        // "PeerIdentifier: the other side, when known"), not only the free text.
        var denied = Assert.Single(events);
        Assert.Equal(alice.Identity.Identifier, denied.PeerIdentifier);
        Assert.Equal("user:alice", denied.Principal);
        Assert.Equal([alice.Credentials[0].Leaf.Credential.IdText], denied.CredentialIds.ToArray());
    }

    private sealed class CapturingLogger : ILogger
    {
        public ConcurrentQueue<(int Id, string Text)> Entries { get; } = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Enqueue((eventId.Id, formatter(state, exception) + (exception is null ? string.Empty : " " + exception)));
    }
}
