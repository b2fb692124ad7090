// A consumer of the package's public types, checked by `tsc --noEmit`
// (make test). The @ts-expect-error lines must stay errors: if the types
// loosen, tsc fails on the unused directive.
import {
  ErrorCode,
  StreamerClient,
  StreamerError,
  isStreamerError,
  type Ack,
  type ClientOptions,
  type ConnectionState,
  type PresenceMember,
  type Progress,
  type Publication,
  type SubscribedContext,
  type Subscription,
} from "@streamer-go/client";

interface Report {
  steps: number;
  seconds: number;
}

export async function use(): Promise<void> {
  const opts: ClientOptions = {
    token: async () => "jwt",
    reconnect: { initialDelayMs: 250, maxDelayMs: 10_000, maxAttempts: 20 },
    pingIntervalMs: 60_000,
    logger: console,
  };
  const client = new StreamerClient("wss://example.execute-api.eu-west-1.amazonaws.com/prod", opts);
  const off = client.on("disconnected", (e) => {
    const code: number = e.code;
    const again: boolean = e.willReconnect;
    void code, again;
  });
  off();
  client.on("reconnecting", ({ attempt, delayMs }) => void (attempt + delayMs));
  const state: ConnectionState = client.state;
  void state;

  const ac = new AbortController();
  const report = await client.request<Report>("report", { seconds: 3 }, {
    signal: ac.signal,
    timeoutMs: 30_000,
    onAck: (a: Ack) => void a.requestId,
    onProgress: (p: Progress) => {
      const pct: number = p.percentage;
      const attempt: number | undefined = p.attempt;
      void pct, attempt;
    },
  });
  const steps: number = report.steps;
  void steps;

  try {
    await client.request("echo", "hi");
  } catch (err) {
    if (isStreamerError(err, ErrorCode.UnknownAction)) {
      const e: StreamerError = err;
      const code: string = e.code;
      void code;
    }
  }

  const sub: Subscription<{ text: string }> = client.subscribe<{ text: string }>("chat:lobby", {
    onPublication: (p: Publication<{ text: string }>) => {
      const text: string = p.data.text;
      const offset: number = p.offset;
      void text, offset;
    },
    onJoin: (m: PresenceMember) => void m.user_id,
    onLeave: (m) => void m.connection_id,
    onSubscribed: (ctx: SubscribedContext) => {
      if (ctx.wasRecovering && !ctx.recovered) void "reload";
    },
  });
  const members: PresenceMember[] = await sub.presence();
  void members;
  await sub.unsubscribe();
  client.close();

  // @ts-expect-error the action is required
  void client.request();
  // @ts-expect-error onPublication is required
  client.subscribe("ticker", {});
  // @ts-expect-error no such event
  client.on("opened", () => {});
  // @ts-expect-error token is a string or a function
  void new StreamerClient("ws://x", { token: 42 });
  // @ts-expect-error percentage is a number
  void client.request("r", null, { onProgress: (p: { percentage: string }) => p });
}
