import { Type, type TSchema } from '@sinclair/typebox';

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details' },
);

/** Error responses every authenticated route may give, plus its own success responses. */
export function withProblems(success: Record<number, TSchema>, codes: number[] = [400, 401, 403, 404, 409, 422]): Record<number, TSchema> {
  const out: Record<number, TSchema> = { ...success };
  for (const code of codes) out[code] = Type.Ref('Problem');
  return out;
}
