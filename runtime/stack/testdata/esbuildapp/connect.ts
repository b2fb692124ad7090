// $connect: every client is welcome.
interface Result {
  statusCode: number;
}

export const handler = async (): Promise<Result> => ({ statusCode: 200 });
