using System.Collections.Concurrent;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// CREDENTIAL_UPDATE (docs/protocol.md §8.3): a side presents refreshed credentials mid-channel, and the peer
/// verifies them, keeps the principal, asks its policy again and replaces its view of the side, or closes.
/// Everything runs on fake time; the pipes run reader continuations inline where time is advanced.
/// </summary>
public sealed class CredentialUpdateTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    // Keepalives every 10 min and a 1 h idle timeout: the channel's timer ticks every 2.5 min, so hours of fake
    // time pass in a few dozen steps. Fake time can outrun a pump that the machine has not scheduled yet, so
    // the tests that advance for hours also exchange a message within every idle timeout rather than rely on
    // keepalives arriving in time.
    private static readonly ChannelTestKit.ChannelSettings Quiet = new() { KeepaliveInterval = TimeSpan.FromMinutes(10), IdleTimeout = TimeSpan.FromHours(1) };

    [Fact]
    public async Task ARefreshBeforeExpiryKeepsTheChannelOpenPastTheOldCredentialsExpiry()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var opened = kit.Time.GetUtcNow();
        var alice = await kit.CreateAgentAsync(["role=a"], credentialLifetime: TimeSpan.FromHours(1));
        var bob = await kit.CreateAgentAsync(["role=b"], credentialLifetime: TimeSpan.FromDays(1), principal: "user:bob");
        var bobEvents = new EventLog();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, settings: Quiet), kit.Options(bob, events: bobEvents.Add, settings: Quiet), ChannelTestKit.CreateConnection(ChannelTestKit.InlineReaders));
        await using (a)
        await using (b)
        {
            var before = b.Peer;
            Assert.Equal(opened.AddHours(1), before.NotAfter);

            await kit.AdvanceAsync(Minute, 50);
            await ExchangeAsync(a, b, "at 50 min");
            var fresh = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1));
            await a.UpdateCredentialsAsync([fresh]);
            var update = await bobEvents.NextUpdateAsync();

            Assert.Equal(opened.AddMinutes(50).AddHours(1), b.Peer.NotAfter);
            Assert.Equal(alice.Identity.Identifier, b.Peer.Identifier);
            Assert.Equal(Principal.Parse("user:alice"), b.Peer.Principal);
            Assert.Equal(fresh.Leaf.Credential.IdText, Assert.Single(Assert.Single(b.Peer.Credentials).Hops).CredentialId);
            Assert.Equal(opened.AddHours(1), before.NotAfter);
            Assert.Equal(alice.Identity.Identifier, update.PeerIdentifier);
            Assert.Equal("user:alice", update.Principal);
            Assert.Equal([fresh.Leaf.Credential.IdText], update.CredentialIds.ToArray());
            Assert.Equal(ChannelErrorCode.Normal, update.Code);

            await kit.AdvanceAsync(Minute, 40);
            Assert.False(b.Completion.IsCompleted, "The channel closed although the credential was refreshed.");
            Assert.False(a.Completion.IsCompleted);
            await ExchangeAsync(a, b, "at 1 h 30 min");

            // From now on the refreshed credential is the one that expires the channel.
            await kit.AdvanceUntilAsync(b.Completion, Minute, 30);
            var closed = await b.Completion;
            Assert.Equal(ChannelErrorCode.CredentialExpired, closed.Code);
            var closedAt = Assert.Single(bobEvents.All, e => e.Kind == ChannelEventKind.Closed).Time;
            Assert.InRange(closedAt, b.Peer.NotAfter, b.Peer.NotAfter.AddMinutes(5));
        }
    }

    [Fact]
    public async Task WithoutARefreshTheChannelClosesWithCredentialExpiredAtTheOldExpiry()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var opened = kit.Time.GetUtcNow();
        var alice = await kit.CreateAgentAsync(["role=a"], credentialLifetime: TimeSpan.FromHours(1));
        var bob = await kit.CreateAgentAsync(["role=b"], credentialLifetime: TimeSpan.FromDays(1), principal: "user:bob");
        var bobEvents = new EventLog();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, settings: Quiet), kit.Options(bob, events: bobEvents.Add, settings: Quiet), ChannelTestKit.CreateConnection(ChannelTestKit.InlineReaders));
        await using (a)
        await using (b)
        {
            await kit.AdvanceAsync(Minute, 50);
            await ExchangeAsync(a, b, "at 50 min");
            await kit.AdvanceAsync(Minute, 9);
            Assert.False(b.Completion.IsCompleted, "The channel closed before the credential expired.");

            await kit.AdvanceUntilAsync(b.Completion, Minute, 30);
            var closed = await b.Completion;
            Assert.Equal(ChannelErrorCode.CredentialExpired, closed.Code);
            Assert.InRange(Assert.Single(bobEvents.All, e => e.Kind == ChannelEventKind.Closed).Time, opened.AddHours(1), opened.AddHours(1).AddMinutes(5));
            var remote = await a.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.CredentialExpired, remote.Code);
            Assert.True(remote.FromPeer);
        }
    }

    [Fact]
    public async Task TheResponderCanRefreshToo()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "team:finance");
        var aliceEvents = new EventLog();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, events: aliceEvents.Add, settings: Quiet), kit.Options(bob, settings: Quiet));
        await using (a)
        await using (b)
        {
            kit.Time.Advance(TimeSpan.FromMinutes(10));
            var fresh = await IssueAsync(kit, bob, ["role=b"], TimeSpan.FromHours(2), "team:finance");
            await b.UpdateCredentialsAsync([fresh]);
            await aliceEvents.NextUpdateAsync();

            Assert.Equal(fresh.Leaf.Credential.NotAfter, a.Peer.NotAfter);
            await ExchangeAsync(a, b, "after the responder's refresh");
        }
    }

    [Fact]
    public async Task MessagesBeforeAndAfterAnUpdateArriveInOrderAndTheUpdateTakesEffectBetweenThem()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var seenWith = new ConcurrentQueue<DateTimeOffset>();
        var bobEvents = new EventLog();
        var filter = Quiet with
        {
            MessageFilter = (peer, _) =>
            {
                seenWith.Enqueue(peer.NotAfter);
                return true;
            },
        };
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, settings: Quiet), kit.Options(bob, events: bobEvents.Add, settings: filter));
        await using (a)
        await using (b)
        {
            var oldExpiry = b.Peer.NotAfter;
            kit.Time.Advance(TimeSpan.FromMinutes(30));
            var fresh = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1));

            // Sizes include multi-fragment messages, so the update lands between two records of one kind or another.
            int[] sizes = [0, 10, 200_000, 65_518, 1, 70_000, 3, 0, 131_036, 5];
            var receiving = Task.Run(async () =>
            {
                for (var i = 0; i < sizes.Length; i++)
                {
                    using var message = await b.ReceiveAsync();
                    Assert.True(message!.Payload.Span.SequenceEqual(ChannelTestKit.Pattern(sizes[i], i)), $"Message {i} arrived altered or out of order.");
                }
            });
            for (var i = 0; i < sizes.Length; i++)
            {
                if (i == 5)
                {
                    await a.UpdateCredentialsAsync([fresh]);
                }

                await a.SendAsync(ChannelTestKit.Pattern(sizes[i], i));
            }

            await receiving.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal([.. Enumerable.Repeat(oldExpiry, 5), .. Enumerable.Repeat(fresh.Leaf.Credential.NotAfter, 5)], seenWith);
            Assert.Single(bobEvents.All, e => e.Kind == ChannelEventKind.CredentialsUpdated);
            Assert.False(b.Completion.IsCompleted);
        }
    }

    [Fact]
    public async Task UpdatesRacingSendsFromOtherTasksLoseNothing()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var bobEvents = new EventLog();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, events: bobEvents.Add));
        await using (a)
        await using (b)
        {
            var fresh = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(2));
            const int Count = 40;
            var sending = Task.Run(async () =>
            {
                for (var i = 0; i < Count; i++)
                {
                    await a.SendAsync(ChannelTestKit.Pattern(i * 3000, i));
                }
            });
            var updating = Task.Run(async () =>
            {
                for (var i = 0; i < 5; i++)
                {
                    await a.UpdateCredentialsAsync([fresh]);
                }
            });
            for (var i = 0; i < Count; i++)
            {
                using var message = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                Assert.True(message!.Payload.Span.SequenceEqual(ChannelTestKit.Pattern(i * 3000, i)), $"Message {i} arrived altered or out of order.");
            }

            await Task.WhenAll(sending, updating).WaitAsync(ChannelTestKit.Guard);
            await ExchangeAsync(a, b, "after the race");
            Assert.Equal(5, bobEvents.All.Count(e => e.Kind == ChannelEventKind.CredentialsUpdated));
            Assert.Equal(fresh.Leaf.Credential.NotAfter, b.Peer.NotAfter);
        }
    }

    [Fact]
    public async Task MoreUpdatesInAMinuteThanTheLimitCloseWithProtocolErrorWhileTheLimitItselfIsFine()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var bobEvents = new EventLog();
        // Minutes pass below: no idle timeout or keepalive in the way.
        var patient = new ChannelTestKit.ChannelSettings { IdleTimeout = TimeSpan.FromMinutes(30), KeepaliveInterval = TimeSpan.FromMinutes(10) };
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, settings: patient), kit.Options(bob, events: bobEvents.Add, settings: patient));
        await using (a)
        await using (b)
        {
            var fresh = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(2));
            var limit = kit.Options(bob).MaxCredentialUpdatesPerMinute;

            // A full window, then a new window a minute later: all accepted.
            for (var window = 0; window < 2; window++)
            {
                for (var i = 0; i < limit; i++)
                {
                    await a.UpdateCredentialsAsync([fresh]);
                }

                await ExchangeAsync(a, b, $"window {window}");
                kit.Time.Advance(TimeSpan.FromMinutes(1));
                await ExchangeAsync(a, b, $"after window {window}");
            }

            Assert.Equal(2 * limit, bobEvents.All.Count(e => e.Kind == ChannelEventKind.CredentialsUpdated));

            // One more than the limit within a minute: each would cost a verification; the peer is cut off.
            for (var i = 0; i <= limit; i++)
            {
                await a.UpdateCredentialsAsync([fresh]);
            }

            var closed = await b.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.ProtocolError, closed.Code);
            Assert.Contains("credential updates in a minute", closed.Reason, StringComparison.Ordinal);
            Assert.Equal(3 * limit, bobEvents.All.Count(e => e.Kind == ChannelEventKind.CredentialsUpdated));
            await AssertSenderSeesAsync(a, ChannelErrorCode.ProtocolError);
        }
    }

    [Fact]
    public async Task AnUpdateThePolicyDeniesClosesWithAccessDeniedAndTheSenderSeesIt()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a", "team=ops"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var bobEvents = new EventLog();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, policy: "has(subject.team)", events: bobEvents.Add));
        await using (a)
        await using (b)
        {
            var before = b.Peer;
            await a.SendAsync("before"u8.ToArray());
            await a.UpdateCredentialsAsync([await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1))]);

            var closed = await b.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.AccessDenied, closed.Code);
            Assert.False(closed.FromPeer);
            Assert.Contains("policy", closed.Reason, StringComparison.Ordinal);
            Assert.Same(before, b.Peer);
            Assert.DoesNotContain(bobEvents.All, e => e.Kind == ChannelEventKind.CredentialsUpdated);
            using (var first = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            {
                Assert.Equal("before"u8.ToArray(), first!.Payload.ToArray());
            }

            await AssertSenderSeesAsync(a, ChannelErrorCode.AccessDenied);
        }
    }

    [Fact]
    public async Task AnUpdateWithARevokedCredentialClosesWithCredentialRevoked()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            var fresh = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1));
            await MergeAsync(kit, 1, RevocationEntry.ForCredential(fresh.Leaf.Credential.Id));

            // Revoking the new credential leaves the old one, on which the open channel rests, untouched.
            await ExchangeAsync(a, b, "the old credential still holds");

            await a.UpdateCredentialsAsync([fresh]);
            var closed = await b.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.CredentialRevoked, closed.Code);
            Assert.False(closed.FromPeer);
            await AssertSenderSeesAsync(a, ChannelErrorCode.CredentialRevoked);
        }
    }

    [Fact]
    public async Task AnUpdateWithAnExpiredCredentialClosesWithCredentialExpired()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"], credentialLifetime: TimeSpan.FromHours(3));
        var bob = await kit.CreateAgentAsync(["role=b"], credentialLifetime: TimeSpan.FromHours(3), principal: "user:bob");
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, settings: Quiet), kit.Options(bob, settings: Quiet));
        await using (a)
        await using (b)
        {
            var stale = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromMinutes(5));
            kit.Time.Advance(TimeSpan.FromMinutes(10));
            await a.UpdateCredentialsAsync([stale]);
            var closed = await b.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.CredentialExpired, closed.Code);
            await AssertSenderSeesAsync(a, ChannelErrorCode.CredentialExpired);
        }
    }

    [Fact]
    public async Task AfterAnUpdateRevocationsAreCheckedAgainstTheNewCredentialsNotTheOld()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var bobEvents = new EventLog();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, events: bobEvents.Add));
        await using (a)
        await using (b)
        {
            var old = alice.Credentials[0];
            var fresh = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1));
            await a.UpdateCredentialsAsync([fresh]);
            await bobEvents.NextUpdateAsync();

            await MergeAsync(kit, 1, RevocationEntry.ForCredential(old.Leaf.Credential.Id));
            Assert.False(b.Completion.IsCompleted, "Revoking the replaced credential closed the channel.");
            await ExchangeAsync(a, b, "the old credential is no longer relied on");

            await MergeAsync(kit, 2, RevocationEntry.ForCredential(fresh.Leaf.Credential.Id));
            var closed = await b.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.CredentialRevoked, closed.Code);
        }
    }

    public static TheoryData<string> PrincipalChanges => ["another principal", "no credentials", "a second chain for another principal"];

    [Theory]
    [MemberData(nameof(PrincipalChanges))]
    public async Task AnUpdateThatChangesThePrincipalClosesWithAccessDenied(string change)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            var before = b.Peer;
            CredentialChain[] presented = change switch
            {
                "another principal" => [await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1), "user:mallory")],
                "no credentials" => [],
                _ => [await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1)), await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1), "team:other")],
            };
            await a.UpdateCredentialsAsync(presented);

            var closed = await b.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.AccessDenied, closed.Code);
            Assert.Contains("principal", closed.Reason, StringComparison.Ordinal);
            Assert.Same(before, b.Peer);
            await AssertSenderSeesAsync(a, ChannelErrorCode.AccessDenied);
        }
    }

    [Fact]
    public async Task APeerWithoutCredentialsCanOnlyPresentNoneAgain()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync();
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var bobEvents = new EventLog();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, events: bobEvents.Add));
        await using (a)
        await using (b)
        {
            Assert.Equal(Principal.Self, b.Peer.Principal);
            await a.UpdateCredentialsAsync([]);
            await bobEvents.NextUpdateAsync();
            await ExchangeAsync(a, b, "still self");

            // Gaining a principal mid-channel is a change of principal too.
            await a.UpdateCredentialsAsync([await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1))]);
            var closed = await b.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.AccessDenied, closed.Code);
            Assert.Equal(Principal.Self, b.Peer.Principal);
        }
    }

    [Fact]
    public async Task AChainAboutAnotherIdentityIsRefusedBeforeAnythingIsSent()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var bobEvents = new EventLog();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, events: bobEvents.Add));
        await using (a)
        await using (b)
        {
            var own = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1));
            var bobs = await IssueAsync(kit, bob, ["role=a"], TimeSpan.FromHours(1));
            var refused = await Assert.ThrowsAsync<ArgumentException>(async () => await a.UpdateCredentialsAsync([own, bobs]));
            Assert.Equal("credentials", refused.ParamName);
            await Assert.ThrowsAsync<ArgumentNullException>(async () => await a.UpdateCredentialsAsync(null!));

            await ExchangeAsync(a, b, "nothing happened");
            Assert.DoesNotContain(bobEvents.All, e => e.Kind == ChannelEventKind.CredentialsUpdated);
            Assert.Equal(alice.Credentials[0].Leaf.Credential.NotAfter, b.Peer.NotAfter);
        }
    }

    [Fact]
    public async Task UpdatingAClosedChannelThrows()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            var fresh = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(1));
            var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await a.UpdateCredentialsAsync([fresh]));
            Assert.Equal(ChannelErrorCode.Normal, failure.Code);
        }
    }

    public static TheoryData<string, WireErrorKind> MalformedBodies => new()
    {
        { "empty", WireErrorKind.Truncated },
        { "truncated", WireErrorKind.Truncated },
        { "not an array", WireErrorKind.Malformed },
        { "one element", WireErrorKind.Malformed },
        { "three elements", WireErrorKind.TooLarge },
        { "version 2", WireErrorKind.UnsupportedVersion },
        { "credentials not an array", WireErrorKind.Malformed },
        { "a chain that is not bin", WireErrorKind.Malformed },
        { "a chain as str", WireErrorKind.NonCanonical },
        { "an empty chain", WireErrorKind.Malformed },
        { "nine chains", WireErrorKind.TooLarge },
        { "non-canonical version", WireErrorKind.NonCanonical },
        { "non-canonical array header", WireErrorKind.NonCanonical },
        { "trailing bytes", WireErrorKind.TrailingBytes },
    };

    [Theory]
    [MemberData(nameof(MalformedBodies))]
    public void AMalformedBodyDoesNotDecode(string body, WireErrorKind kind)
    {
        var failure = Assert.Throws<WireFormatException>(() => CredentialUpdate.Decode(Malformed(body), maxChains: 8));
        Assert.Equal(kind, failure.Kind);
    }

    [Fact]
    public void ABodyRoundTripsAndHoldsTheChainsAsInTheHandshake()
    {
        var chains = new[] { new byte[] { 1, 2, 3 }, new byte[] { 4 } };
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteUnsigned(1);
        writer.WriteArray(2);
        writer.WriteBytes(chains[0]);
        writer.WriteBytes(chains[1]);
        var body = writer.ToArray();

        Assert.Equal("9201 92 c403010203 c40104".Replace(" ", string.Empty, StringComparison.Ordinal), Convert.ToHexStringLower(body));
        Assert.Equal(chains, CredentialUpdate.Decode(body, maxChains: 8).ToArray());
        Assert.Empty(CredentialUpdate.Decode(Convert.FromHexString("920190"), maxChains: 0));
        Assert.Equal(WireErrorKind.TooLarge, Assert.Throws<WireFormatException>(() => CredentialUpdate.Decode(body, maxChains: 1)).Kind);
    }

    [Fact]
    public async Task TheSenderEncodesTheChainsItIsGiven()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var second = await IssueAsync(kit, alice, ["role=a"], TimeSpan.FromHours(2));
        var body = CredentialUpdate.Encode([alice.Credentials[0], second]);
        Assert.Equal([alice.Credentials[0].Encoded, second.Encoded], CredentialUpdate.Decode(body, maxChains: 2).ToArray());
    }

    public static TheoryData<string> MalformedRecords => [.. MalformedBodies.Select(row => (string)row[0])];

    [Theory]
    [MemberData(nameof(MalformedRecords))]
    public async Task AMalformedUpdateRecordEndsTheChannelWithProtocolErrorAfterEarlierMessages(string body)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var (a, rogue) = await OpenWithRogueResponderAsync(kit, alice, bob);
        using (rogue)
        await using (a)
        {
            var before = a.Peer;
            await rogue.SendRecordAsync((byte)RecordType.DataLast, "before"u8.ToArray());
            await rogue.SendRecordAsync((byte)RecordType.CredentialUpdate, Malformed(body));
            await rogue.SendRecordAsync((byte)RecordType.DataLast, "after"u8.ToArray());

            using (var first = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            {
                Assert.Equal("before"u8.ToArray(), first!.Payload.ToArray());
            }

            var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.ProtocolError, failure.Code);
            Assert.False(failure.FromPeer);
            Assert.Same(before, a.Peer);
        }
    }

    [Fact]
    public async Task AWellFormedUpdateWhoseChainDoesNotDecodeIsAccessDeniedAsInTheHandshake()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var (a, rogue) = await OpenWithRogueResponderAsync(kit, alice, bob);
        using (rogue)
        await using (a)
        {
            await rogue.SendRecordAsync((byte)RecordType.CredentialUpdate, Convert.FromHexString("920191c40100"));
            var closed = await a.Completion.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(ChannelErrorCode.AccessDenied, closed.Code);
            Assert.Contains("Malformed", closed.Reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AWellFormedUpdateFromARawPeerIsAcceptedLikeOneFromTheApi()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var (a, rogue) = await OpenWithRogueResponderAsync(kit, alice, bob);
        using (rogue)
        await using (a)
        {
            var fresh = await IssueAsync(kit, bob, ["role=b"], TimeSpan.FromHours(3), "user:bob");
            await rogue.SendRecordAsync((byte)RecordType.CredentialUpdate, CredentialUpdate.Encode([fresh]));
            await rogue.SendRecordAsync((byte)RecordType.DataLast, "after"u8.ToArray());
            using var after = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal("after"u8.ToArray(), after!.Payload.ToArray());
            Assert.Equal(fresh.Leaf.Credential.NotAfter, a.Peer.NotAfter);
        }
    }

    [Fact]
    public async Task RecordsBetweenTheFragmentsOfAMessageLeaveItWhole()
    {
        // Each fragment after the first is decrypted straight behind the ones before, its type byte borrowing the
        // message's last byte: a keepalive or a credential update in between must neither cut nor stain it.
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"], principal: "user:bob");
        var (a, rogue) = await OpenWithRogueResponderAsync(kit, alice, bob);
        using (rogue)
        await using (a)
        {
            var fragments = new[] { Array.Empty<byte>(), Pattern(60_000, 1), Pattern(1, 2), Pattern(65_000, 3), Pattern(3, 4) };
            var fresh = await IssueAsync(kit, bob, ["role=b"], TimeSpan.FromHours(3), "user:bob");
            await rogue.SendRecordAsync((byte)RecordType.DataMore, fragments[0]);
            await rogue.SendRecordAsync((byte)RecordType.Keepalive, default);
            await rogue.SendRecordAsync((byte)RecordType.DataMore, fragments[1]);
            await rogue.SendRecordAsync((byte)RecordType.CredentialUpdate, CredentialUpdate.Encode([fresh]));
            await rogue.SendRecordAsync((byte)RecordType.DataMore, fragments[2]);
            await rogue.SendRecordAsync((byte)RecordType.DataMore, fragments[3]);
            await rogue.SendRecordAsync((byte)RecordType.Keepalive, default);
            await rogue.SendRecordAsync((byte)RecordType.DataLast, fragments[4]);
            await rogue.SendRecordAsync((byte)RecordType.DataLast, "next"u8.ToArray());

            using (var whole = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
            {
                Assert.Equal(fragments.SelectMany(f => f).ToArray(), whole!.Payload.ToArray());
            }

            using var next = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal("next"u8.ToArray(), next!.Payload.ToArray());
            Assert.Equal(fresh.Leaf.Credential.NotAfter, a.Peer.NotAfter);
        }
    }

    private static byte[] Pattern(int length, int seed) => [.. Enumerable.Range(0, length).Select(i => (byte)((i * 7) + seed))];

    private static byte[] Malformed(string body)
    {
        var writer = new CanonicalWriter();
        switch (body)
        {
            case "empty":
                return [];
            case "truncated":
                return Convert.FromHexString("920191c4030102");
            case "not an array":
                writer.WriteUnsigned(1);
                break;
            case "one element":
                writer.WriteArray(1);
                writer.WriteUnsigned(1);
                break;
            case "three elements":
                writer.WriteArray(3);
                writer.WriteUnsigned(1);
                writer.WriteArray(0);
                writer.WriteNil();
                break;
            case "version 2":
                writer.WriteArray(2);
                writer.WriteUnsigned(2);
                writer.WriteArray(0);
                break;
            case "credentials not an array":
                writer.WriteArray(2);
                writer.WriteUnsigned(1);
                writer.WriteBytes([1]);
                break;
            case "a chain that is not bin":
                writer.WriteArray(2);
                writer.WriteUnsigned(1);
                writer.WriteArray(1);
                writer.WriteUnsigned(7);
                break;
            case "a chain as str":
                // MessagePack readers take str for bin; the canonical re-encoding does not.
                writer.WriteArray(2);
                writer.WriteUnsigned(1);
                writer.WriteArray(1);
                writer.WriteText("chain");
                break;
            case "an empty chain":
                writer.WriteArray(2);
                writer.WriteUnsigned(1);
                writer.WriteArray(1);
                writer.WriteBytes([]);
                break;
            case "nine chains":
                writer.WriteArray(2);
                writer.WriteUnsigned(1);
                writer.WriteArray(9);
                for (var i = 0; i < 9; i++)
                {
                    writer.WriteBytes(new[] { (byte)i });
                }

                break;
            case "non-canonical version":
                // 1 as uint8 (cc 01) instead of a positive fixint.
                return Convert.FromHexString("92cc0190");
            case "non-canonical array header":
                // The outer array as array16 (dc 0002) instead of a fixarray.
                return Convert.FromHexString("dc00020190");
            default:
                return Convert.FromHexString("92019000");
        }

        return writer.ToArray();
    }

    private static async Task<(SecureChannel Initiator, RoguePeer Responder)> OpenWithRogueResponderAsync(ChannelTestKit kit, ChannelTestKit.Agent alice, ChannelTestKit.Agent bob)
    {
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        var rogueOpen = RoguePeer.RespondAsync(responderEnd, kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(initiatorEnd, kit.Options(alice));
        var rogue = await rogueOpen.WaitAsync(ChannelTestKit.Guard);
        await rogue.SendRecordAsync((byte)RecordType.Accept, default);
        return (await connect.WaitAsync(ChannelTestKit.Guard), rogue);
    }

    private static Task<CredentialChain> IssueAsync(ChannelTestKit kit, ChannelTestKit.Agent agent, string[] attributes, TimeSpan lifetime, string principal = "user:alice")
    {
        var now = kit.Time.GetUtcNow();
        return CredentialIssuer.IssueAsync(kit.Authority, agent.Identity.Identifier, Principal.Parse(principal), AttributeSet.Parse(attributes), now, now + lifetime, 2);
    }

    // Keeps every event of one side, and hands the CredentialsUpdated ones to a test that awaits them in turn.
    private sealed class EventLog
    {
        private readonly ConcurrentQueue<ChannelEvent> _all = new();
        private readonly System.Threading.Channels.Channel<ChannelEvent> _updates = System.Threading.Channels.Channel.CreateUnbounded<ChannelEvent>();

        public IEnumerable<ChannelEvent> All => _all;

        public void Add(ChannelEvent record)
        {
            _all.Enqueue(record);
            if (record.Kind == ChannelEventKind.CredentialsUpdated)
            {
                _updates.Writer.TryWrite(record);
            }
        }

        public Task<ChannelEvent> NextUpdateAsync() => _updates.Reader.ReadAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
    }

    private static async Task MergeAsync(ChannelTestKit kit, ulong sequence, RevocationEntry entry)
    {
        var list = new RevocationList(kit.Authority.Identifier, sequence, kit.Time.GetUtcNow(), [entry]);
        Assert.Equal(RevocationMergeResult.Accepted, kit.Revocations.Merge(await SignedRevocationList.SignAsync(list, kit.Authority), kit.Authority.Verified));
    }

    private static async Task ExchangeAsync(SecureChannel initiator, SecureChannel responder, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        await initiator.SendAsync(bytes);
        await responder.SendAsync(bytes);
        using var atResponder = await responder.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        using var atInitiator = await initiator.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        Assert.Equal(bytes, atResponder!.Payload.ToArray());
        Assert.Equal(bytes, atInitiator!.Payload.ToArray());
    }

    // The side whose update was refused learns only the code, from the peer's CLOSE.
    private static async Task AssertSenderSeesAsync(SecureChannel sender, ChannelErrorCode code)
    {
        var remote = await sender.Completion.WaitAsync(ChannelTestKit.Guard);
        Assert.Equal(code, remote.Code);
        Assert.True(remote.FromPeer);
        var failure = await Assert.ThrowsAsync<SecureChannelException>(async () => await sender.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
        Assert.Equal(code, failure.Code);
        Assert.True(failure.FromPeer);
    }
}
