using System.Net;
using SecureChannels.Authority.Issuance;
using SecureChannels.Client;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Authority.Tests.Service;

/// <summary>
/// <see cref="AgentClient.KeepUpWithAuthorityAsync"/> against the real authority, on the kit's fake clock: an agent
/// enrolled with a ticket keeps its credential fresh and follows the authority's revocation lists until it is stopped.
/// No relay is involved (<see cref="AgentClient"/> opens peer channels only through relays): what a verifier would
/// accept is checked by the authority itself, which verifies the credentials an agent presents in its handshake.
/// </summary>
/// <remarks>
/// Fake-time rules: the clock moves only while no handshake is in flight. Each refresh is a real handshake with the
/// authority, so the clock is moved in one step to when a refresh is certainly due (past the jitter window) and then
/// stands still until the new credential has landed; the subscription is waited for (the authority's subscriber
/// count) before the clock first moves.
/// </remarks>
public sealed class ClientUpkeepTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);

    // CredentialRefresher's defaults, which KeepUpWithAuthorityAsync uses: due at 2/3 of the lifetime, up to a tenth
    // of the lifetime earlier at random.
    private static readonly double RefreshAt = 2.0 / 3;
    private static readonly double Jitter = 0.1;

    [Fact]
    public async Task An_enrolled_agent_keeps_its_credential_fresh_for_hours_past_the_first_ones_expiry()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        using var signer = InMemorySigner.Generate();

        // Each jump of the clock (40 minutes) outlasts the subscription channel's idle timeout, so the authority and
        // the agent both drop it. With a day's back-off it stays down for the rest of this test instead of
        // reconnecting (a real handshake) while the clock moves: what this test watches is the refresher alone.
        await using var agent = await CreateAgentAsync(kit, signer, reconnectBackoff: TimeSpan.FromDays(1));
        var first = await agent.EnrollAsync(EndPoint(kit), kit.Identity.Identifier, await CreateTicketAsync(kit));
        Assert.Equal(Lifetime, first.Leaf.Credential.NotAfter - first.Leaf.Credential.NotBefore);
        using var stop = new CancellationTokenSource();
        var running = agent.KeepUpWithAuthorityAsync(EndPoint(kit), kit.Identity.Identifier, stoppingToken: stop.Token);
        await AuthorityTestKit.UntilAsync(() => kit.Current!.Server.SubscriberCount == 1 || running.IsCompleted);
        Assert.False(running.IsCompleted, running.Exception?.ToString());

        // Six refreshes: four hours of one-hour credentials.
        var current = first;
        for (var refresh = 1; refresh <= 6; refresh++)
        {
            var credential = current.Leaf.Credential;
            var latestDue = credential.NotBefore + (Lifetime * RefreshAt);
            Assert.True(kit.Time.GetUtcNow() < latestDue - (Lifetime * Jitter), $"refresh {refresh}: the previous one landed late, inside the next one's window");
            kit.Time.Advance(latestDue - kit.Time.GetUtcNow());

            // The refresh is a handshake and a request on real sockets: the clock stands still until it has landed.
            await AuthorityTestKit.UntilAsync(() => !ReferenceEquals(agent.Credentials[0], current) || running.IsCompleted);
            Assert.False(running.IsCompleted, running.Exception?.ToString());
            var fresh = Assert.Single(agent.Credentials).Leaf.Credential;
            Assert.NotEqual(credential.Id, fresh.Id);
            Assert.Equal(agent.Identifier, fresh.Subject);
            Assert.Equal(credential.Principal, fresh.Principal);
            Assert.Equal(credential.Attributes.ToString(), fresh.Attributes.ToString());
            Assert.Equal(Lifetime, fresh.NotAfter - fresh.NotBefore);
            Assert.True(fresh.NotAfter > credential.NotAfter, $"refresh {refresh}: {fresh.NotAfter:u} is not past {credential.NotAfter:u}");
            Assert.True(fresh.NotAfter > kit.Time.GetUtcNow() + (Lifetime / 2), $"refresh {refresh}: the new credential is nearly gone already");
            current = agent.Credentials[0];
        }

        var now = kit.Time.GetUtcNow();
        Assert.True(now > first.Leaf.Credential.NotAfter + TimeSpan.FromHours(2), $"{now:u}: not hours past the first credential's expiry");

        // What the agent presents now is still valid to a verifier: the authority's handshake verifies it, and
        // refuses the first credential, long expired.
        var presenting = await agent.ConnectToAuthorityAsync(EndPoint(kit), kit.Identity.Identifier, presentCredentials: true).WaitAsync(AuthorityTestKit.Guard);
        await presenting.DisposeAsync();
        await using (var stale = new AgentClient(agent.Options.WithCredentials([first])))
        {
            var refused = await Assert.ThrowsAsync<SecureChannelException>(() => stale.ConnectToAuthorityAsync(EndPoint(kit), kit.Identity.Identifier, presentCredentials: true).WaitAsync(AuthorityTestKit.Guard));
            Assert.Equal(ChannelErrorCode.CredentialExpired, refused.Code);
        }

        await stop.CancelAsync();
        await running.WaitAsync(AuthorityTestKit.Guard);
    }

    [Fact]
    public async Task Revocations_published_at_the_authority_reach_the_agents_registry()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        using var signer = InMemorySigner.Generate();
        await using var agent = await CreateAgentAsync(kit, signer);
        using var stop = new CancellationTokenSource();
        var (_, running) = await EnrollAndKeepUpAsync(kit, agent, stop.Token);
        var registry = agent.Options.Revocations;
        var before = registry.Find(kit.Identity.Identifier)?.List.Sequence ?? 0;

        // Two in a row: the second proves the subscription follows, not only catches up when it subscribes.
        var operatorCaller = Caller.Operator(kit.Identity.Identifier);
        var one = await kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForPrincipal(Principal.Parse("user:mallory")), "left");
        Assert.True(one > before);
        await AuthorityTestKit.UntilAsync(() => registry.Find(kit.Identity.Identifier)?.List.Sequence == one || running.IsCompleted);
        var two = await kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForPrincipal(Principal.Parse("user:eve")), "left too");
        await AuthorityTestKit.UntilAsync(() => registry.Find(kit.Identity.Identifier)?.List.Sequence == two || running.IsCompleted);
        Assert.False(running.IsCompleted, running.Exception?.ToString());
        Assert.True(two > one);

        var now = kit.Time.GetUtcNow();
        Credential ActingFor(string principal) => new(Credential.NewId(), kit.Identity.Identifier, agent.Identifier, Principal.Parse(principal), AttributeSet.Empty, now, now + Lifetime, 0, null);
        Assert.NotNull(registry.FindRevocation(kit.Identity.Identifier, ActingFor("user:mallory")));
        Assert.NotNull(registry.FindRevocation(kit.Identity.Identifier, ActingFor("user:eve")));
        Assert.Null(registry.FindRevocation(kit.Identity.Identifier, agent.Credentials[0].Leaf.Credential));

        await stop.CancelAsync();
        await running.WaitAsync(AuthorityTestKit.Guard);
    }

    [Fact]
    public async Task When_the_agents_own_credential_is_revoked_the_next_refresh_ends_it_with_the_refusal()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        using var signer = InMemorySigner.Generate();
        await using var agent = await CreateAgentAsync(kit, signer);
        var (chain, running) = await EnrollAndKeepUpAsync(kit, agent, CancellationToken.None);
        var sequence = await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForCredential(chain.Leaf.Credential.Id), "stolen");
        await AuthorityTestKit.UntilAsync(() => agent.Options.Revocations.Find(kit.Identity.Identifier)?.List.Sequence == sequence || running.IsCompleted);
        Assert.False(running.IsCompleted, running.Exception?.ToString());

        // Nothing on the clock is in flight: the subscription is up and idle, the refresher waits for its due time.
        kit.Time.Advance((chain.Leaf.Credential.NotBefore + (Lifetime * RefreshAt)) - kit.Time.GetUtcNow());

        var refused = await Assert.ThrowsAsync<AuthorityException>(() => running.WaitAsync(AuthorityTestKit.Guard));
        Assert.Equal(AuthorityErrorCode.CredentialRevoked, refused.Code);
        Assert.Same(chain, Assert.Single(agent.Credentials));

        // Its subscription stopped with it.
        await AuthorityTestKit.UntilAsync(() => kit.Current!.Server.SubscriberCount == 0);
    }

    [Fact]
    public async Task Stopping_the_token_ends_it_at_once_without_an_exception_and_so_does_disposing_the_agent()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        using var signer = InMemorySigner.Generate();
        await using var agent = await CreateAgentAsync(kit, signer);
        using var stop = new CancellationTokenSource();
        var (_, running) = await EnrollAndKeepUpAsync(kit, agent, stop.Token);

        // The clock does not move: stopping waits for no timer (the refresher's is 40 minutes away).
        await stop.CancelAsync();
        await running.WaitAsync(AuthorityTestKit.Guard);
        Assert.True(running.IsCompletedSuccessfully, running.Status.ToString());
        await AuthorityTestKit.UntilAsync(() => kit.Current!.Server.SubscriberCount == 0);

        // Run again, then dispose the agent instead: it stops with the agent.
        var again = agent.KeepUpWithAuthorityAsync(EndPoint(kit), kit.Identity.Identifier);
        await AuthorityTestKit.UntilAsync(() => kit.Current!.Server.SubscriberCount == 1 || again.IsCompleted);
        Assert.False(again.IsCompleted, again.Exception?.ToString());
        await agent.DisposeAsync();
        await again.WaitAsync(AuthorityTestKit.Guard);
        Assert.True(again.IsCompletedSuccessfully, again.Status.ToString());
        await AuthorityTestKit.UntilAsync(() => kit.Current!.Server.SubscriberCount == 0);
    }

    [Fact]
    public async Task An_authority_that_does_not_answer_the_connect_is_retried_until_the_credential_expires()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        using var signer = InMemorySigner.Generate();
        await using var agent = await CreateAgentAsync(kit, signer);
        var chain = await agent.EnrollAsync(EndPoint(kit), kit.Identity.Identifier, await CreateTicketAsync(kit));

        // An endpoint that never answers a connect: a listener whose accept queue (backlog 0: one connection, on
        // Linux) is full drops every further SYN, as a firewall or a host gone from the network would.
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var silent = (IPEndPoint)listener.LocalEndPoint!;
        using var filler = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await filler.ConnectAsync(silent).WaitAsync(AuthorityTestKit.Guard);

        var running = agent.KeepUpWithAuthorityAsync(silent, kit.Identity.Identifier);

        // Connects that never complete are the point here: the clock moves on while they hang. Straight to before the
        // earliest the refresh can come due (34 minutes), then a second at a time through every retry until the
        // credential's expiry.
        var notAfter = chain.Leaf.Credential.NotAfter;
        kit.Time.Advance(TimeSpan.FromMinutes(33));
        for (var step = 0; !running.IsCompleted && kit.Time.GetUtcNow() < notAfter + TimeSpan.FromMinutes(1); step++)
        {
            Assert.True(step < 2000, "the clock ran past the credential's expiry");
            kit.Time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(1);
        }

        Assert.True(kit.Time.GetUtcNow() > notAfter - TimeSpan.FromMinutes(2), $"it ended at {kit.Time.GetUtcNow():u}, long before the credential's expiry at {notAfter:u}: {running.Status} {running.Exception?.InnerException}");
        var gaveUp = await Assert.ThrowsAsync<AuthorityException>(() => running.WaitAsync(AuthorityTestKit.Guard));
        Assert.Equal(AuthorityErrorCode.Unavailable, gaveUp.Code);
    }

    private static IPEndPoint EndPoint(AuthorityTestKit kit) => kit.Current!.Server.EndPoint!;

    // Enrolls the agent with a fresh ticket and starts keeping it up, once its subscription is in place.
    private static async Task<(CredentialChain Chain, Task Running)> EnrollAndKeepUpAsync(AuthorityTestKit kit, AgentClient agent, CancellationToken stop)
    {
        var chain = await agent.EnrollAsync(EndPoint(kit), kit.Identity.Identifier, await CreateTicketAsync(kit), CancellationToken.None);
        var running = agent.KeepUpWithAuthorityAsync(EndPoint(kit), kit.Identity.Identifier, stoppingToken: stop);
        await AuthorityTestKit.UntilAsync(() => kit.Current!.Server.SubscriberCount == 1 || running.IsCompleted);
        Assert.False(running.IsCompleted, running.Exception?.ToString());
        return (chain, running);
    }

    private static async Task<string> CreateTicketAsync(AuthorityTestKit kit)
    {
        var request = new TicketRequest(Principal.Parse("system:worker"), AttributeSet.Parse(["role=worker"]), TimeSpan.Zero, TimeSpan.Zero, 0);
        return (await kit.Service.CreateTicketAsync(Caller.Operator(kit.Identity.Identifier), request)).Ticket.Reveal();
    }

    /// <summary>An agent with no relay (it only talks to the authority), trusting the kit's authority, on the kit's clock.</summary>
    private static async Task<AgentClient> CreateAgentAsync(AuthorityTestKit kit, InMemorySigner signer, TimeSpan? reconnectBackoff = null) =>
        new(new AgentClientOptions
        {
            Identity = await AgentIdentity.CreateAsync(signer, kit.Time),
            Anchors = new TrustAnchors().Trust(kit.Identity.Verified),
            Listen = false,
            FirstReconnectBackoff = reconnectBackoff ?? TimeSpan.FromSeconds(1),
            MaxReconnectBackoff = reconnectBackoff ?? TimeSpan.FromSeconds(30),
            TimeProvider = kit.Time,
        });
}

/// <summary>Options of a second client for the same agent, presenting other credentials.</summary>
internal static class AgentClientOptionsExtensions
{
    public static AgentClientOptions WithCredentials(this AgentClientOptions options, IReadOnlyList<CredentialChain> credentials) => new()
    {
        Identity = options.Identity,
        Anchors = options.Anchors,
        Credentials = credentials,
        Listen = false,
        TimeProvider = options.TimeProvider,
    };
}
