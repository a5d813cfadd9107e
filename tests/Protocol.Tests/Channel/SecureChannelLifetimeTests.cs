using System.Collections.Concurrent;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// What happens while a channel is open, on fake time: continuous evaluation of the peer's credentials, idle
/// timeout and keepalives, rekeying, the message filter, and disposal. The pipes run reader continuations
/// inline, so a record written on a timer tick is processed by the peer before the tick returns.
/// </summary>
public sealed class SecureChannelLifetimeTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task WhenThePeersCredentialExpiresTheChannelClosesWithCredentialExpiredAfterDeliveringEarlierMessages()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"], credentialLifetime: TimeSpan.FromSeconds(30));
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var opened = kit.Time.GetUtcNow();
        var events = new ConcurrentQueue<ChannelEvent>();
        var probe = new ChannelTestKit.MessageProbe();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, events: events.Enqueue, settings: new() { MessageFilter = probe.Filter }), ChannelTestKit.CreateConnection(ChannelTestKit.InlineReaders));
        await using (a)
        await using (b)
        {
            Assert.Equal(opened.AddSeconds(30), b.Peer.NotAfter);
            for (var i = 0; i < 3; i++)
            {
                await a.SendAsync(ChannelTestKit.Pattern(100, i));
            }

            // The sentinel passing bob's filter means the third message is queued.
            await a.SendAsync(Sentinel);
            await probe.SeenAsync(4);

            await kit.AdvanceAsync(Second, 29);
            Assert.False(b.Completion.IsCompleted, "The channel closed before the peer's credential expired.");

            await kit.AdvanceUntilAsync(b.Completion, Second, 30);
            var closed = await b.Completion;
            Assert.Equal(ChannelErrorCode.CredentialExpired, closed.Code);
            Assert.False(closed.FromPeer);
            var closedAt = Assert.Single(events, e => e.Kind == ChannelEventKind.Closed).Time;
            Assert.InRange(closedAt, b.Peer.NotAfter, b.Peer.NotAfter.AddSeconds(5));

            for (var i = 0; i < 3; i++)
            {
                using var message = await b.ReceiveAsync();
                Assert.True(message!.Payload.Span.SequenceEqual(ChannelTestKit.Pattern(100, i)));
            }

            var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await SkipSentinelAsync(b));
            Assert.Equal(ChannelErrorCode.CredentialExpired, failure.Code);

            var remote = await a.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.CredentialExpired, remote.Code);
            Assert.True(remote.FromPeer);
        }
    }

    [Fact]
    public async Task ARevocationListMergedWhileOpenClosesTheChannelWithCredentialRevokedAfterDeliveringEarlierMessages()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var probe = new ChannelTestKit.MessageProbe();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, settings: new() { MessageFilter = probe.Filter }), ChannelTestKit.CreateConnection(ChannelTestKit.InlineReaders));
        await using (a)
        await using (b)
        {
            await a.SendAsync("one"u8.ToArray());
            await a.SendAsync("two"u8.ToArray());
            await a.SendAsync("three"u8.ToArray());
            await a.SendAsync(Sentinel);

            // The sentinel passing bob's filter means "three" is queued.
            await probe.SeenAsync(4);

            // A list that revokes somebody else changes nothing.
            await MergeAsync(kit, 1, RevocationEntry.ForPrincipal(Principal.Parse("user:carol")));
            Assert.False(b.Completion.IsCompleted);
            Assert.False(a.Completion.IsCompleted);

            await MergeAsync(kit, 2, RevocationEntry.ForSubject(alice.Identity.Identifier));

            // Merge raises Changed synchronously, and the channel re-checks at once.
            Assert.True(b.Completion.IsCompleted, "The channel did not re-check its peer when the revocation list arrived.");
            var closed = await b.Completion;
            Assert.Equal(ChannelErrorCode.CredentialRevoked, closed.Code);
            Assert.False(closed.FromPeer);
            Assert.Contains("revoked", closed.Reason, StringComparison.OrdinalIgnoreCase);

            using (var one = await b.ReceiveAsync())
            using (var two = await b.ReceiveAsync())
            using (var three = await b.ReceiveAsync())
            {
                Assert.Equal("one"u8.ToArray(), one!.Payload.ToArray());
                Assert.Equal("two"u8.ToArray(), two!.Payload.ToArray());
                Assert.Equal("three"u8.ToArray(), three!.Payload.ToArray());
            }

            var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await SkipSentinelAsync(b));
            Assert.Equal(ChannelErrorCode.CredentialRevoked, failure.Code);
            Assert.False(failure.FromPeer);

            var remote = await Assert.ThrowsAsync<SecureChannelException>(async () => await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.CredentialRevoked, remote.Code);
            Assert.True(remote.FromPeer);
            Assert.DoesNotContain(alice.Identity.Identifier.ToString(), remote.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task WhenNothingArrivesForTheIdleTimeoutTheChannelClosesWithIdleTimeout()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // Bob is silent for ten minutes (no keepalives); alice gives up after the default 60 s.
        var silent = new ChannelTestKit.ChannelSettings { KeepaliveInterval = TimeSpan.FromMinutes(10), IdleTimeout = TimeSpan.FromHours(1) };
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, settings: silent), ChannelTestKit.CreateConnection(ChannelTestKit.InlineReaders));
        await using (a)
        await using (b)
        {
            await kit.AdvanceAsync(Second, 59);
            Assert.False(a.Completion.IsCompleted, "The channel idled out early.");

            await kit.AdvanceUntilAsync(a.Completion, Second, 10);
            var closed = await a.Completion;
            Assert.Equal(ChannelErrorCode.IdleTimeout, closed.Code);
            Assert.False(closed.FromPeer);
            var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await a.ReceiveAsync());
            Assert.Equal(ChannelErrorCode.IdleTimeout, failure.Code);

            var remote = await b.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.IdleTimeout, remote.Code);
            Assert.True(remote.FromPeer);
        }
    }

    [Fact]
    public async Task KeepalivesKeepAQuietChannelOpen()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var mitm = new FaultyConnection(options: ChannelTestKit.InlineReaders);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), mitm.Ends);
        await using (a)
        await using (b)
        {
            var framesBefore = (mitm.ToResponder.Frames, mitm.ToInitiator.Frames);

            // Five minutes of silence from the application, in steps well below the 15 s keepalive interval.
            // Every 20 s (at least one keepalive interval plus a timer tick) wait until a keepalive crossed each
            // way, so a busy machine cannot let fake time outrun the receive pumps.
            for (var window = 0; window < 15; window++)
            {
                var (sentToBob, sentToAlice) = (mitm.ToResponder.Frames, mitm.ToInitiator.Frames);
                await kit.AdvanceAsync(Second, 20);
                await ChannelTestKit.UntilAsync(() => mitm.ToResponder.Frames > sentToBob && mitm.ToInitiator.Frames > sentToAlice);
            }
            Assert.False(a.Completion.IsCompleted, "Alice's side closed although keepalives flowed.");
            Assert.False(b.Completion.IsCompleted, "Bob's side closed although keepalives flowed.");

            // About one keepalive every 15 s each way.
            Assert.InRange(mitm.ToResponder.Frames - framesBefore.Item1, 15, 25);
            Assert.InRange(mitm.ToInitiator.Frames - framesBefore.Item2, 15, 25);

            await a.SendAsync("still here"u8.ToArray());
            await b.SendAsync("me too"u8.ToArray());
            using var atBob = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            using var atAlice = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal("still here"u8.ToArray(), atBob!.Payload.ToArray());
            Assert.Equal("me too"u8.ToArray(), atAlice!.Payload.ToArray());
        }
    }

    [Fact]
    public async Task AfterRekeyAfterMessagesBothDirectionsRekeyAndEveryMessageArrives()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var aliceEvents = new ConcurrentQueue<ChannelEvent>();
        var bobEvents = new ConcurrentQueue<ChannelEvent>();
        var settings = new ChannelTestKit.ChannelSettings { RekeyAfterMessages = 3 };
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, events: aliceEvents.Enqueue, settings: settings), kit.Options(bob, events: bobEvents.Enqueue, settings: settings));
        await using (a)
        await using (b)
        {
            await Task.WhenAll(Exchange(a, b, 1), Exchange(b, a, 2)).WaitAsync(ChannelTestKit.Guard);
            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            await b.Completion.WaitAsync(ChannelTestKit.Guard);

            var aliceSent = Rekeys(aliceEvents, "sending");
            var bobSent = Rekeys(bobEvents, "sending");
            Assert.InRange(aliceSent, 20 / 3, 21);
            Assert.InRange(bobSent, 20 / 3, 21);
            Assert.Equal(aliceSent, Rekeys(bobEvents, "receiving"));
            Assert.Equal(bobSent, Rekeys(aliceEvents, "receiving"));
            Assert.All(aliceEvents.Where(e => e.Kind == ChannelEventKind.Rekeyed), e => Assert.Equal(bob.Identity.Identifier, e.PeerIdentifier));
        }

        static async Task Exchange(SecureChannel sender, SecureChannel receiver, int seed)
        {
            var sending = Task.Run(async () =>
            {
                for (var i = 0; i < 20; i++)
                {
                    await sender.SendAsync(ChannelTestKit.Pattern(i * 1000, seed + i));
                }
            });
            for (var i = 0; i < 20; i++)
            {
                using var message = await receiver.ReceiveAsync();
                Assert.True(message!.Payload.Span.SequenceEqual(ChannelTestKit.Pattern(i * 1000, seed + i)), $"Message {i} arrived altered.");
            }

            await sending;
        }
    }

    [Fact]
    public async Task AfterRekeyAfterTimeTheNextSendRekeys()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var aliceEvents = new ConcurrentQueue<ChannelEvent>();
        var bobEvents = new ConcurrentQueue<ChannelEvent>();

        // Nothing is sent on its own during the test: keepalives are ten minutes apart.
        var settings = new ChannelTestKit.ChannelSettings { RekeyAfterTime = TimeSpan.FromMinutes(1), KeepaliveInterval = TimeSpan.FromMinutes(10), IdleTimeout = TimeSpan.FromHours(1) };
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, events: aliceEvents.Enqueue, settings: settings), kit.Options(bob, events: bobEvents.Enqueue, settings: settings), ChannelTestKit.CreateConnection(ChannelTestKit.InlineReaders));
        await using (a)
        await using (b)
        {
            await SendAndReceive("before", a, b);
            await kit.AdvanceAsync(Second, 59);
            await SendAndReceive("not yet", a, b);
            Assert.Equal(0, Rekeys(aliceEvents, "sending"));

            await kit.AdvanceAsync(Second, 2);
            Assert.Equal(0, Rekeys(aliceEvents, "sending"));
            await SendAndReceive("rekeys now", a, b);
            Assert.Equal(1, Rekeys(aliceEvents, "sending"));
            await SendAndReceive("under the new key", a, b);
            Assert.Equal(1, Rekeys(aliceEvents, "sending"));
            Assert.Equal(1, Rekeys(bobEvents, "receiving"));
        }

        static async Task SendAndReceive(string text, SecureChannel sender, SecureChannel receiver)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(text);
            await sender.SendAsync(bytes);
            using var message = await receiver.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(bytes, message!.Payload.ToArray());
        }
    }

    [Fact]
    public async Task AMessageFilterThatRefusesClosesWithAccessDeniedAfterEarlierMessages()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var judged = new ConcurrentQueue<string>();
        var filter = new ChannelTestKit.ChannelSettings
        {
            MessageFilter = (peer, message) =>
            {
                var text = System.Text.Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(message));
                judged.Enqueue($"{peer.Identifier}:{text}");
                return !text.Contains("forbidden", StringComparison.Ordinal);
            },
        };

        // The relay holds alice's records until she has sent them all, so her sends never race bob's refusal.
        var sent = new TaskCompletionSource();
        var mitm = new FaultyConnection(toResponder: new FaultPlan().Delay(2, sent.Task));
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, settings: filter), mitm.Ends);
        await using (a)
        await using (b)
        {
            foreach (var text in new[] { "ok 1", "ok 2", "forbidden", "after" })
            {
                await a.SendAsync(System.Text.Encoding.UTF8.GetBytes(text));
            }

            sent.SetResult();
            using (var one = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            using (var two = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            {
                Assert.Equal("ok 1"u8.ToArray(), one!.Payload.ToArray());
                Assert.Equal("ok 2"u8.ToArray(), two!.Payload.ToArray());
            }

            var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.AccessDenied, failure.Code);
            Assert.False(failure.FromPeer);
            Assert.Equal([$"{alice.Identity.Identifier}:ok 1", $"{alice.Identity.Identifier}:ok 2", $"{alice.Identity.Identifier}:forbidden"], judged);

            var remote = await a.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.AccessDenied, remote.Code);
            Assert.True(remote.FromPeer);
        }
    }

    [Fact]
    public async Task DisposingWithoutClosingTellsThePeerGoingAwayAfterEarlierMessages()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (b)
        {
            await a.SendAsync("one"u8.ToArray());
            await a.SendAsync("two"u8.ToArray());
            await a.DisposeAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            await a.DisposeAsync().AsTask().WaitAsync(ChannelTestKit.Guard);

            var local = await a.Completion;
            Assert.Equal(ChannelErrorCode.GoingAway, local.Code);
            Assert.False(local.FromPeer);
            var send = await Assert.ThrowsAsync<SecureChannelException>(async () => await a.SendAsync("late"u8.ToArray()));
            Assert.Equal(ChannelErrorCode.GoingAway, send.Code);

            using (var one = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            using (var two = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            {
                Assert.Equal("one"u8.ToArray(), one!.Payload.ToArray());
                Assert.Equal("two"u8.ToArray(), two!.Payload.ToArray());
            }

            // In memory the CLOSE record always precedes the end of the stream.
            var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.GoingAway, failure.Code);
            Assert.True(failure.FromPeer);
        }
    }

    [Fact]
    public async Task DisposingWithoutClosingOverTcpEndsThePeerWithGoingAwayOrConnectionLost()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        await using var tcp = await LoopbackTcp.ConnectAsync();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), tcp.Ends);
        await using (b)
        {
            await a.SendAsync("one"u8.ToArray());
            await a.DisposeAsync().AsTask().WaitAsync(ChannelTestKit.Guard);

            using (var one = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            {
                Assert.Equal("one"u8.ToArray(), one!.Payload.ToArray());
            }

            var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.True(
                (failure.Code == ChannelErrorCode.GoingAway && failure.FromPeer) || failure.Code == ChannelErrorCode.ConnectionLost,
                $"{failure.Code} (from peer: {failure.FromPeer}): {failure.Message}");
        }
    }

    private static readonly byte[] Sentinel = "sentinel"u8.ToArray();

    // The sentinel may or may not have been queued when the channel ended; whatever follows must be the end.
    private static async Task<ChannelMessage?> SkipSentinelAsync(SecureChannel channel)
    {
        var message = await channel.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        if (message is not null && message.Payload.Span.SequenceEqual(Sentinel))
        {
            message.Dispose();
            return await channel.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        }

        return message;
    }

    private static int Rekeys(IEnumerable<ChannelEvent> events, string direction) =>
        events.Count(e => e.Kind == ChannelEventKind.Rekeyed && e.Detail == direction);

    private static async Task MergeAsync(ChannelTestKit kit, ulong sequence, RevocationEntry entry)
    {
        var list = new RevocationList(kit.Authority.Identifier, sequence, kit.Time.GetUtcNow(), [entry]);
        Assert.Equal(RevocationMergeResult.Accepted, kit.Revocations.Merge(await SignedRevocationList.SignAsync(list, kit.Authority), kit.Authority.Verified));
    }

    [Fact]
    public async Task AfterItsCloseASideSendsNoKeepaliveWhileItWaitsForThePeersAnswer()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // Bob's frames after ACCEPT (his answer to the CLOSE) are held forever: alice waits with her CLOSE sent.
        var connection = new FaultyConnection(toInitiator: new FaultPlan().Delay(FrameSelector.From(2), new TaskCompletionSource().Task));
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), connection.Ends);
        await using (b)
        {
            var closing = a.CloseAsync();
            await connection.ToResponder.WaitForFramesAsync(3);

            // Past the keepalive interval (15 s) and its tick, before the idle timeout (60 s). The timer runs inside Advance.
            kit.Time.Advance(TimeSpan.FromSeconds(20));
            Assert.False(closing.IsCompleted);
            await a.DisposeAsync();
            await connection.ToResponder.Completion.WaitAsync(ChannelTestKit.Guard);

            // Handshake messages 1 and 3, then the CLOSE: nothing after it.
            Assert.Equal(3, connection.ToResponder.Frames);
        }
    }
}
