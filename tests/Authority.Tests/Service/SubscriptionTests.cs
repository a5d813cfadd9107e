using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

public sealed class SubscriptionTests
{
    [Fact]
    public async Task A_subscription_reconnects_after_the_authority_restarts_and_catches_up_on_what_it_missed()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var verifier = await kit.CreateAgentAsync();
        var book = new PolicyBook();
        var subscription = new AuthoritySubscription(
            async token => await SecureChannel.ConnectAsync(
                await AuthorityTestKit.ConnectTcpAsync(kit.Current!.Server.EndPoint!),
                kit.Options(verifier, $"peer.identifier == \"{kit.Identity.Identifier}\""),
                token),
            verifier.Revocations,
            book,
            new AuthoritySubscriptionOptions { TimeProvider = kit.Time });
        using var stop = new CancellationTokenSource();
        var running = subscription.RunAsync(stop.Token);
        await AuthorityTestKit.UntilAsync(() => subscription.Subscriptions == 1);
        var operatorCaller = Caller.Operator(kit.Identity.Identifier);
        await kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForPrincipal(Principal.Parse("user:one")), "1");
        await AuthorityTestKit.UntilAsync(() => verifier.Revocations.Find(kit.Identity.Identifier)?.List.Sequence == 1);

        // The authority goes away; while it is away (and after it is back) revocations and a policy are published.
        await kit.Current!.StopAsync();
        await AuthorityTestKit.UntilAsync(() => subscription.Current is null);
        await kit.StartAsync();
        await kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForPrincipal(Principal.Parse("user:two")), "2");
        await kit.Service.PublishPolicyAsync(operatorCaller, "billing", "subject.role == \"worker\"");
        Assert.Equal(1UL, verifier.Revocations.Find(kit.Identity.Identifier)!.List.Sequence);

        // The back-off is on the fake clock: at most MaxBackoff (30 s) later the subscriber is back and caught up.
        for (var second = 0; subscription.Subscriptions < 2; second++)
        {
            Assert.True(second < 120, "The subscription did not come back within two minutes of back-off.");
            kit.Time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(1);
        }

        await AuthorityTestKit.UntilAsync(() => verifier.Revocations.Find(kit.Identity.Identifier)?.List.Sequence == 2 && book.Find("billing") is not null);
        await stop.CancelAsync();
        await running.WaitAsync(AuthorityTestKit.Guard);
    }

    [Fact]
    public async Task A_subscriber_that_never_reads_is_cut_not_buffered_for()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        var authorityEnd = await kit.CreateAgentAsync();
        var stuck = await kit.CreateAgentAsync();

        // The authority's end writes into a pipe that holds at most 16 KiB; the subscriber's end never reads a message.
        var toSubscriber = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(pauseWriterThreshold: 16384, resumeWriterThreshold: 8192));
        var toAuthority = new System.IO.Pipelines.Pipe();
        var accept = SecureChannel.AcceptAsync(new TestPipe(toAuthority.Reader, toSubscriber.Writer), kit.Options(authorityEnd, "true"));
        await using var subscriberEnd = await SecureChannel.ConnectAsync(new TestPipe(toSubscriber.Reader, toAuthority.Writer), kit.Options(stuck, "true"));
        await using var channel = await accept;
        using var metrics = new Telemetry.AuthorityMetrics();
        using var subscriber = new Publication.Subscriber(channel, new SubscribeRequest(0, new Dictionary<string, ulong>()), TimeSpan.FromSeconds(10), kit.Time, metrics, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        subscriber.Start();

        // Distinct resources do not coalesce: more pushes than the subscriber's receive queue (16) and the pipe hold.
        for (var i = 0; i < 40; i++)
        {
            var document = new PolicyDocument(kit.Identity.Identifier, $"resource-{i}", 1, kit.Time.GetUtcNow(), $"subject.note == \"{new string('x', 4000)}\"");
            subscriber.Offer(Publication.Push.For(await SignedPolicyDocument.SignAsync(document, kit.Identity), kit.Time.GetTimestamp()));
        }

        // Nothing is cut while the clock stands still. Each step of the clock cuts a push that has waited the whole
        // send timeout; a push still making progress starts a new wait.
        Assert.Equal(0, metrics.SubscribersCut);
        for (var step = 0; !subscriber.Completion.IsCompleted; step++)
        {
            Assert.True(step < 100, "The subscriber that never reads was not cut.");
            kit.Time.Advance(TimeSpan.FromSeconds(10));
            await Task.Delay(1);
        }

        Assert.Equal(1, metrics.SubscribersCut);
        Assert.True(channel.Completion.IsCompleted);
    }

    [Fact]
    public async Task Subscribers_are_counted_and_one_that_leaves_is_forgotten()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        var authority = await kit.StartAsync();
        var clients = new List<AuthorityClient>();
        for (var i = 0; i < 3; i++)
        {
            var agent = await kit.CreateAgentAsync();
            var client = await kit.ConnectAsync(agent);
            await client.SubscribeAsync(agent.Revocations);
            clients.Add(client);
        }

        Assert.Equal(3, authority.Server.SubscriberCount);
        await clients[0].DisposeAsync();
        await AuthorityTestKit.UntilAsync(() => authority.Server.SubscriberCount == 2);
        Assert.Equal(AuthorityErrorCode.Malformed, (await Assert.ThrowsAsync<AuthorityException>(() => clients[1].SubscribeAsync(new RevocationRegistry()))).Code);
    }

    private sealed class TestPipe(System.IO.Pipelines.PipeReader input, System.IO.Pipelines.PipeWriter output) : System.IO.Pipelines.IDuplexPipe
    {
        public System.IO.Pipelines.PipeReader Input { get; } = input;

        public System.IO.Pipelines.PipeWriter Output { get; } = output;
    }
}
